"""Graph -> readable Keras 3 code (`ktrans codegen FILE --target keras`).

The generated module builds the same model with the functional API:

    def build_model() -> keras.Model:
        image = keras.Input(shape=(784,), name="image")
        x = layers.Dense(512, activation="relu", name="dense")(image)
        ...
        return keras.Model(inputs=image, outputs=output, name="MnistMLP")

- Layers keep their names (`name="dense_1"`), so weights line up with `--weights` files
  and `model.summary()` reads like `ktrans summary`. Only arguments that differ from the
  Keras default are written: each converted config value is compared with the layer's
  `Arg` default converted the same way. Initializers and regularizers that differ are
  `keras.initializers` / `keras.regularizers` objects.
- Expressions are keras.ops calls: `+ - * / **` as operators, reductions with explicit
  axes (keras.ops would reduce the batch axis too), `ops.reshape(x, (-1, ...))` (our
  target shape has no batch axis), `ops.transpose(x, axes=...)` (the perm includes the
  batch axis), indexing as `x[:, ...]`.
- A shared layer is one variable called several times; wrapped layers are nested
  (`layers.Bidirectional(layers.LSTM(...))`).
- The graph is already expanded: blocks become straight-line code with a comment
  `# block residual_block (ResidualBlock)` where the enclosing block changes. A block
  with no parameters used once (what `ktrans import` writes for a model nested in a
  Keras model) is a nested model instead, built by its own function and called where
  the block is used: `x = build_stem()(image)` (keras_nesting.py).
- With a default train block, `compile_model(model)` calls `model.compile(...)` and
  FIT_ARGS holds its `model.fit` settings.

Safety: no name or string from a .kdl file becomes code. Every identifier the module
binds is checked (an ASCII Python identifier, no keyword, no builtin, none of the names
the module itself uses) or replaced; every literal is written with `repr()`; comments
carry only checked names. The result is parsed before it is returned.

Layout: the code is written as `ruff format` writes it, for its default line length (88)
and for longer ones: a statement that does not fit on one line is split at its brackets
with one item per line and a trailing comma (which ruff keeps).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from transpiler import __version__
from transpiler.emit.code.keras_args import (
    initializer_expr,
    is_default,
    layer_expr,
    regularizer_expr,
    value_expr,
)
from transpiler.emit.code.keras_compile import compile_lines
from transpiler.emit.code.keras_custom import CUSTOM_CLASSES, class_definitions
from transpiler.emit.code.keras_names import (
    NAME_LIMIT,
    RESERVED,
    CodegenError,
    Namer,
    is_safe_identifier,
    is_safe_name_text,
    lit,
    pystr,
)
from transpiler.emit.code.keras_nesting import SubModel, nested_view, sub_models
from transpiler.emit.code.keras_ops import OP_NAMES, expression_expr
from transpiler.emit.code.keras_render import (
    INDENT,
    KW,
    LINE,
    Atom,
    Call,
    Expr,
    Pair,
    Seq,
    call,
    render,
)
from transpiler.emit.code.keras_writer import KerasWriter, Line
from transpiler.emit.code.templates import load_template
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph

__all__ = [
    "INDENT",
    "KW",
    "LINE",
    "NAME_LIMIT",
    "OP_NAMES",
    "RESERVED",
    "Atom",
    "Call",
    "CodegenError",
    "Expr",
    "KerasWriter",
    "Line",
    "Namer",
    "Pair",
    "Seq",
    "call",
    "compile_lines",
    "expression_expr",
    "generate_keras",
    "initializer_expr",
    "is_default",
    "is_safe_identifier",
    "is_safe_name_text",
    "layer_expr",
    "lit",
    "pystr",
    "regularizer_expr",
    "render",
    "value_expr",
]


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def _function_names(view: Graph) -> dict[int, str]:
    """id(SubModel) -> the name of the function that builds it (`build_stem`)."""
    namer = Namer()
    return {id(sub): namer.fresh(f"build_{sub.name}") for sub in sub_models(view)}


def _function(name: str, sub: SubModel, body: list[str]) -> list[str]:
    kind = "keras.Sequential" if sub.sequential else "keras.Model"
    what = f" {sub.name}" if is_safe_name_text(sub.name) else ""
    block = f" (block {sub.block})" if is_safe_name_text(sub.block) else ""
    return [
        f"def {name}() -> {kind}:",
        f'    """Returns the nested model{what}{block}."""',
        *body,
    ]


def generate_keras(graph: Graph, program=None, source: str | None = None) -> str:
    """The Python source of a module whose `build_model()` returns `graph` in Keras 3."""
    view = nested_view(graph)
    functions = _function_names(view)
    writer = KerasWriter(view, program, functions=functions)
    try:
        body = writer.body()
        nested = []
        for sub in sub_models(view):
            sub_writer = KerasWriter(sub.graph, program, sub=sub, functions=functions)
            nested.append(_function(functions[id(sub)], sub, sub_writer.body()))
            writer.uses_ops = writer.uses_ops or sub_writer.uses_ops
        config = graph.trains.get("default") if graph.trains else None
        compile_body, fit_args = compile_lines(config) if config is not None else ([], [])
    except CodegenError as e:
        _fail(f"cannot generate Keras code for model '{graph.name}': {e}")
    source_name = Path(source).name if source else None
    if source_name is not None and not re.fullmatch(r"[\w.\-]{1,60}", source_name, re.ASCII):
        source_name = None
    layers_count = sum(1 for la in graph.layers if la.family != "expression")
    custom = {la.keras_class() for la in graph.layers} & set(CUSTOM_CLASSES)
    code = load_template("keras_model.py.j2").render(
        model=graph.name if is_safe_name_text(graph.name) else "",
        source=source_name,
        version=__version__,
        layers=layers_count,
        params=f"{graph.param_count:,}",
        uses_ops=writer.uses_ops,
        custom_classes=class_definitions(custom),
        body=body,
        nested=nested,
        compile_body=compile_body,
        fit_args=fit_args,
        train_name=config.name if config is not None and is_safe_name_text(config.name) else "",
    )
    try:
        ast.parse(code)
    except SyntaxError as e:  # a bug in the generator, never in the input
        raise CodegenError(f"generated code does not parse: {e}") from None
    return code
