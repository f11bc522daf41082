"""The generated file: helpers, block classes and the model class through
templates/torch_model.py.j2, checked to parse before it is returned."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from transpiler import __version__
from transpiler.emit.code.keras_names import CodegenError, is_safe_name_text, pystr
from transpiler.emit.code.templates import load_template
from transpiler.emit.torch.code import (
    INDENT,
    KW,
    LINE,
    Atom,
    BareTuple,
    Call,
    Comprehension,
    Expr,
    Pair,
    Seq,
    Stmt,
    render,
    render_block,
)
from transpiler.emit.torch.generator import ClassRef, Generated, TorchGenerator, Variant
from transpiler.emit.torch.helpers import closure, imports_for
from transpiler.emit.torch.names import class_name
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.layers.base import snake_case

#: definitions every generated module holds
ALWAYS = ("keras_to_torch", "torch_to_keras")


def signature(name: str, params: list[str], returns: str | None, indent: int) -> list[str]:
    """`def name(params) -> returns:` on one line, or one parameter per line."""
    pad = " " * indent
    tail = ")" + (f" -> {returns}" if returns else "") + ":"
    one = f"{pad}def {name}({', '.join(params)}{tail}"
    if len(one) <= LINE:
        return [one]
    return [f"{pad}def {name}(", *(f"{pad}{' ' * INDENT}{p}," for p in params), pad + tail]


def _class_refs(expr: Expr, out: list[ClassRef]) -> None:
    """The block classes an expression constructs, innermost first."""
    if isinstance(expr, Call):
        for a in expr.args:
            _class_refs(a, out)
        if isinstance(expr.func, ClassRef):
            out.append(expr.func)
    elif isinstance(expr, KW):
        _class_refs(expr.value, out)
    elif isinstance(expr, Seq):
        for item in expr.items:
            _class_refs(item, out)
    elif isinstance(expr, Comprehension):
        _class_refs(expr.elt, out)


def _block_class(variant: Variant, doc: str) -> str:
    lines = [f"class {variant.ref.text}(nn.Module):", f'    """{doc}"""', ""]
    params = ["self", *(f"{name}: {ann}" for name, ann in variant.init_params)]
    lines += signature("__init__", params, "None", INDENT)
    lines.append(" " * 8 + "super().__init__()")
    lines += [f"        self.{name} = {name}" for name, _ in variant.init_params]
    lines.append("")
    forward = ["self", *(f"{p}: torch.Tensor" for p in variant.forward_params)]
    lines += signature("forward", forward, variant.returns, INDENT)
    lines += render_block(variant.forward, 8)
    return "\n".join(lines)


def _block_doc(program, variant: Variant, source: str | None) -> str:
    definition = variant.definition
    if variant.doc:
        return variant.doc
    block = program.blocks.get(definition) if program is not None else None
    params = [p.name for p in block.params] if block is not None else []
    shown = [p for p in params if is_safe_name_text(p)]
    head = f"Block {definition}({', '.join(shown)})" if is_safe_name_text(definition) else "A block"
    text = f"{head} of {source}." if source else f"{head}."
    return text if len(text) <= LINE - 11 else f"{head}."


def _tables(layers: list) -> list[str]:
    """KERAS_LAYERS, and the weight maps it names (one per kind of layer and flags)."""
    kinds: dict[tuple, str] = {}
    lines: list[str] = []
    taken: set[str] = set()
    for lw in layers:
        if (lw.kind, lw.weights) in kinds:
            continue
        base = re.sub(r"\W", "_", snake_case(lw.kind)).upper() + "_WEIGHTS"
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        kinds[(lw.kind, lw.weights)] = name
        items = [
            Pair(pystr(k), Seq("(", ")", [Atom(pystr(param)), Atom(pystr(layout))]))
            for k, param, layout in lw.weights
        ]
        lines += render(Seq("{", "}", items), 0, f"{name} = ")
    lines += [
        "",
        "# Keras layer -> (its module, its weights: Keras name -> (name here, layout))",
    ]
    if not layers:
        return [*lines, "KERAS_LAYERS = {}"]
    lines.append("KERAS_LAYERS = {")
    for lw in layers:
        value = Seq("(", ")", [Atom(pystr(lw.path)), Atom(kinds[(lw.kind, lw.weights)])])
        lines += render(value, INDENT, f"{pystr(lw.layer)}: ", ",")
    return [*lines, "}"]


@dataclass(frozen=True)
class TorchModule:
    class_name: str
    code: str


def generate_torch(graph: Graph, program=None, source: str | None = None) -> str:
    """The Python source of a module whose class computes `graph` in PyTorch."""
    return torch_module(graph, program, source).code


def torch_module(graph: Graph, program=None, source: str | None = None) -> TorchModule:
    """The module's source and the name of its model class. Raises KdlErrors where the
    graph uses something the PyTorch target does not write."""
    try:
        generated = TorchGenerator(graph, program).generate()
        result = _render(graph, program, source, generated)
    except CodegenError as e:
        raise KdlErrors(
            [KdlError(None, f"cannot generate PyTorch code for model '{graph.name}': {e}")]
        ) from None
    try:
        ast.parse(result.code)
    except SyntaxError as e:  # a bug in the generator, never in the input
        raise CodegenError(f"generated code does not parse: {e}") from None
    return result


def _render(graph: Graph, program, source: str | None, generated: Generated) -> TorchModule:
    root = generated.root
    source_name = Path(source).name if source else None
    if source_name is not None and not re.fullmatch(r"[\w.\-]{1,60}", source_name, re.ASCII):
        source_name = None
    helpers = closure(set(generated.helpers) | set(ALWAYS))
    taken = {d.name for d in helpers} | {"Block"}
    model_class = class_name(graph.name, taken)
    # name the block classes in the order the model constructs them
    refs: list[ClassRef] = []
    for attr in root.attrs.values():
        _class_refs(attr.ctor, refs)
    by_ref = {id(v.ref): v for v in generated.variants}
    ordered: list[Variant] = []
    for ref in refs:
        variant = by_ref[id(ref)]
        if variant not in ordered:
            ordered.append(variant)
            ref.text = class_name(variant.definition or "Block", taken)
    blocks = [_block_class(v, _block_doc(program, v, source_name)) for v in ordered]
    init = []
    for attr in root.attrs.values():
        init += render(attr.ctor, 8, f"self.{attr.name} = ")
    forward_params = ["self", *(f"{p}: torch.Tensor" for p in root.params)]
    forward_params.append("return_masks: bool = False")
    forward = signature("forward", forward_params, None, INDENT)
    forward += render_block(root.stmts + _model_return(generated), 8)
    weights = [w.under(a.name) for a in root.attrs.values() for w in a.weights]
    imports = imports_for(helpers)
    import_lines = [*imports, ""] if imports else []
    import_lines += ["import torch", "from torch import nn"]  # torch only
    ins = [v.name for v in graph.inputs]
    outs = list(graph.outputs)
    code = load_template("torch_model.py.j2").render(
        model=graph.name if is_safe_name_text(graph.name) else "",
        doc=_docstring(graph, source_name, model_class, root.params),
        cls=model_class,
        imports=import_lines,
        helpers=[d.source for d in helpers],
        blocks=blocks,
        names=_names("input_names", ins) + _names("output_names", outs),
        init=init,
        forward=forward,
        table=_tables(weights),
    )
    return TorchModule(model_class, code)


def _names(attribute: str, names: list[str]) -> list[str]:
    """`input_names = ("image",)`: a class attribute holding the .kdl's names."""
    return render(Seq("(", ")", [Atom(pystr(n)) for n in names]), INDENT, f"{attribute} = ")


def _docstring(graph: Graph, source: str | None, cls: str, params: list[str]) -> list[str]:
    """The module docstring after its first line: what the class is, how to use it, and
    the conventions every generated model follows (wrapped to the line length)."""
    model = f" {graph.name}" if is_safe_name_text(graph.name) else ""
    layers = sum(1 for la in graph.layers if la.family != "expression")
    origin = f" from {source}" if source else ""
    names = [v.name for v in graph.inputs]
    shown = ", ".join(n for n in names if is_safe_name_text(n))
    order = (
        f"in the .kdl's order ({shown})" if len(shown) < 60 and shown else "in input_names' order"
    )
    several = len(graph.outputs) > 1
    returns = "a tuple of the outputs in output_names' order" if several else "the output"
    call = f"{'outputs' if several else 'output'} = model({', '.join(params)})"
    if len(call) > LINE - 4:
        call = f"{'outputs' if several else 'output'} = model(*inputs)"
    paragraphs = [
        f"Generated by ktrans {__version__}{origin}; edit freely. {cls} is a "
        f"torch.nn.Module that computes what Keras computes for the model{model}: {layers} "
        f"layers, {graph.param_count:,} parameters. Its attributes are the layers, named "
        "as `ktrans summary` names them (a block's layers are attributes of its submodule).",
    ]
    usage = [
        f"    model = {cls}.from_keras_weights(numpy.load({pystr(cls + '.init.npz')}))",
        "    model.eval()  # inference: no dropout or noise, moving statistics",
        f"    {call}",
    ]
    bullets = [
        f"forward takes the inputs {order}, shaped as declared there with the batch axis "
        f"first (channels last unless the model says otherwise), and returns {returns}.",
        "forward(..., return_masks=True) returns (outputs, masks): masks mirrors outputs, "
        "each the output's Keras mask (a bool tensor shaped like the output without its "
        "last axis, True where a step counts; from Embedding(mask_zero=True)) or None. A "
        "loss over a masked output leaves the masked steps out, as Keras's does.",
        "model.train() turns on Dropout, noise and BatchNormalization's batch statistics, "
        "which update its moving statistics the Keras way: moving * momentum + batch * "
        "(1 - momentum). Layers with trainable=false have requires_grad False.",
        'load_keras_weights(arrays) takes Keras-layout arrays keyed "<layer>/<weight>" '
        "(a `ktrans build --weights` .npz, or Keras's layer.weights), keras_weights() "
        "gives them back; KERAS_LAYERS says where each one lives here.",
    ]
    lines = textwrap.wrap(paragraphs[0], LINE)
    lines += ["", *usage, "", "Conventions (the same for every model ktrans generates):", ""]
    for bullet in bullets:
        lines += textwrap.wrap(bullet, LINE, initial_indent="- ", subsequent_indent="  ")
    return lines


def _model_return(generated: Generated) -> list[Stmt]:
    """`return outputs`, after `if return_masks: return outputs, masks`."""
    root = generated.root
    by_value = {id(v): tv for v, tv in zip(root.returned, generated.results)}
    per_output = [by_value[id(v)] for v in root.gen.graph.outputs.values()]
    outs = [Atom(tv.name) for tv in per_output]
    masks = [Atom(tv.mask or "None") for tv in per_output]
    if len(outs) == 1:
        pair = BareTuple(items=[outs[0], masks[0]])
        plain: Expr = outs[0]
    else:
        pair = BareTuple(items=[Seq("(", ")", outs), Seq("(", ")", masks)])
        plain = BareTuple(items=outs)
    branch = Stmt(header="if return_masks:", body=[Stmt("return ", pair)])
    return [branch, Stmt("return ", plain)]
