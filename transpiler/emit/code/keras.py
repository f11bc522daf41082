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
  `# block residual_block (ResidualBlock)` where the enclosing block changes.
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
import builtins
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from transpiler import __version__
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph, Node
from transpiler.layers.base import REQUIRED, Arg, Layer, snake_case
from transpiler.layers.initializers import CLASS_NAMES, INITIALIZERS, Initializer
from transpiler.layers.regularizers import Regularizer

LINE = 88  # ruff format's default line length
INDENT = 4
NAME_LIMIT = 24  # variables stay short, so operator expressions fit on one line

# names the generated module binds or uses itself; tensors never take them
RESERVED = frozenset(
    {"keras", "layers", "ops", "np", "model", "build_model", "compile_model", "FIT_ARGS"}
)
_BUILTINS = frozenset(dir(builtins))


class CodegenError(Exception):
    """A graph construct the Keras generator cannot express."""


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


# ---------------------------------------------------------------- safe names and literals


def is_safe_identifier(name: str) -> bool:
    """An ASCII Python identifier that is no keyword, soft keyword, builtin or dunder."""
    return (
        isinstance(name, str)
        and name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in _BUILTINS
        and not name.startswith("__")
    )


class Namer:
    """Unique, safe, lower-case variable names from hints (.kdl names, layer names)."""

    def __init__(self) -> None:
        self.used: set[str] = set(RESERVED)
        self.count = 0

    def fresh(self, hint: str) -> str:
        base = snake_case(re.sub(r"[^0-9A-Za-z_]+", "_", str(hint)))
        base = re.sub(r"_+", "_", base).strip("_")[:NAME_LIMIT].rstrip("_")
        if base and (base in RESERVED or not is_safe_identifier(base)):
            base = f"{base}_"  # class -> class_, keras -> keras_, print -> print_
        if not base or not is_safe_identifier(base) or base[0].isdigit():
            self.count += 1
            base = f"t_{self.count}"
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        if not is_safe_identifier(name):  # cannot happen; never emit an unchecked name
            raise CodegenError(f"unsafe identifier {name!r}")
        self.used.add(name)
        return name


def pystr(s: str) -> str:
    """A string literal, as repr() writes it but with the double quotes ruff prefers."""
    text = repr(str(s))
    if text.startswith("'") and '"' not in s:
        text = '"' + text[1:-1].replace("\\'", "'") + '"'
    if ast.literal_eval(text) != s:  # the literal must mean exactly the string
        raise CodegenError(f"cannot write {s!r} as a literal")
    return text


def lit(value) -> str:
    """A Python literal for a config value (numbers, strings, booleans, None, tuples)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CodegenError(f"cannot write the number {value!r}")
        return repr(float(value))
    if isinstance(value, str):
        return pystr(value)
    if isinstance(value, tuple):
        items = [lit(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(lit(v) for v in value)}]"
    name = getattr(value, "name", None)
    if isinstance(name, str) and type(value).__name__ == "Symbol":
        return pystr(name)
    raise CodegenError(f"cannot write a {type(value).__name__} value as Keras code")


def _comment(text: str) -> str:
    """Comment text made of checked characters only."""
    return re.sub(r"[^0-9A-Za-z_.\-,:()>' ]", "_", text)


# ---------------------------------------------------------------- code as ruff formats it


class Expr:
    def flat(self) -> str:
        raise NotImplementedError


@dataclass
class Atom(Expr):
    text: str

    def flat(self) -> str:
        return self.text


@dataclass
class KW(Expr):
    name: str
    value: Expr

    def flat(self) -> str:
        return f"{self.name}={self.value.flat()}"


@dataclass
class Pair(Expr):
    key: str  # a literal
    value: Expr

    def flat(self) -> str:
        return f"{self.key}: {self.value.flat()}"


@dataclass
class Seq(Expr):
    open: str
    close: str
    items: list[Expr] = field(default_factory=list)

    def flat(self) -> str:
        inner = ", ".join(i.flat() for i in self.items)
        if self.open == "(" and len(self.items) == 1:
            inner += ","
        return f"{self.open}{inner}{self.close}"

    def args_or_items(self) -> list[Expr]:
        return self.items


@dataclass
class Call(Expr):
    func: Expr
    args: list[Expr] = field(default_factory=list)

    def flat(self) -> str:
        return f"{self.func.flat()}({', '.join(a.flat() for a in self.args)})"

    def args_or_items(self) -> list[Expr]:
        return self.args


def call(func: str | Expr, *args: Expr, **kwargs: Expr) -> Call:
    f = Atom(func) if isinstance(func, str) else func
    return Call(f, [*args, *(KW(k, v) for k, v in kwargs.items())])


def render(expr: Expr, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """`prefix + expr + suffix` at `indent`: one line if it fits, else split at brackets
    with one item per line and a magic trailing comma."""
    pad = " " * indent
    one = f"{pad}{prefix}{expr.flat()}{suffix}"
    if len(one) <= LINE or (isinstance(expr, (Call, Seq)) and not expr.args_or_items()):
        return [one]
    if isinstance(expr, KW):
        return render(expr.value, indent, f"{prefix}{expr.name}=", suffix)
    if isinstance(expr, Pair):
        return render(expr.value, indent, f"{prefix}{expr.key}: ", suffix)
    if isinstance(expr, Call):
        if isinstance(expr.func, Call):
            # `layers.Dense(...)(x)`: split the layer's arguments and keep the call's,
            # unless the layer has a lone argument and the call's can be split instead
            tail = "(" + ", ".join(a.flat() for a in expr.args) + ")" + suffix
            head = f"{pad}{prefix}{expr.func.flat()}("
            lone = len(expr.func.args) <= 1 and len(head) <= LINE
            if len(pad) + 1 + len(tail) <= LINE and not lone:
                return render(expr.func, indent, prefix, tail)
            lines = render(expr.func, indent, prefix, "(")
        else:
            lines = [f"{pad}{prefix}{expr.func.flat()}("]
        return _items(lines, expr.args, indent, pad + ")" + suffix)
    if isinstance(expr, Seq):
        return _items([pad + prefix + expr.open], expr.items, indent, pad + expr.close + suffix)
    return [one]  # an atom: nothing to split


def _items(lines: list[str], items: list[Expr], indent: int, close: str) -> list[str]:
    for item in items:
        lines += render(item, indent + INDENT, "", ",")
    lines.append(close)
    return lines


# ---------------------------------------------------------------- layers as constructor calls


def _normal(value):
    """A config value in a form where equal meaning compares equal."""
    if isinstance(value, Initializer):
        spec = INITIALIZERS.get(value.name, {})
        return ("init", value.name, tuple((k, value.get(k)) for k in spec))
    if isinstance(value, list):
        return tuple(_normal(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_normal(v) for v in value)
    return value


def is_default(arg: Arg, value) -> bool:
    if arg.default is REQUIRED:
        return False
    if arg.name == "data_format":
        return value in (None, "channels_last")  # Keras's default image_data_format
    try:
        default = arg.convert(arg.default)
    except Exception:
        return False
    return _normal(value) == _normal(default)


def _compact(arg: Arg, value):
    """(3, 3) -> 3, ((1, 1), (1, 1)) -> 1: the shortest form the argument converts back
    to the same value, as people write Keras."""
    short = value
    while isinstance(short, tuple) and short and all(v == short[0] for v in short):
        try:
            if arg.convert(short[0]) != value:
                break
        except Exception:
            break
        short = short[0]
    return short


_INIT_CLASSES = {canon: cls for cls, canon in CLASS_NAMES.items() if cls[:1].isupper()}


def initializer_expr(init: Initializer) -> Expr:
    cls = _INIT_CLASSES.get(init.name) or "".join(p.title() for p in init.name.split("_"))
    spec = INITIALIZERS.get(init.name, {})
    kwargs = {k: Atom(lit(init.get(k))) for k in spec if init.get(k) != spec[k]}
    return call(f"keras.initializers.{_checked(cls)}", **kwargs)


def regularizer_expr(reg: Regularizer) -> Expr:
    if reg.l1 and not reg.l2:
        return call("keras.regularizers.L1", Atom(lit(reg.l1)))
    if reg.l2 and not reg.l1:
        return call("keras.regularizers.L2", Atom(lit(reg.l2)))
    return call("keras.regularizers.L1L2", l1=Atom(lit(reg.l1)), l2=Atom(lit(reg.l2)))


def value_expr(arg: Arg, value) -> Expr:
    if isinstance(value, Layer):
        return layer_expr(value)
    if isinstance(value, Initializer):
        return initializer_expr(value)
    if isinstance(value, Regularizer):
        return regularizer_expr(value)
    return Atom(lit(_compact(arg, value)))


def _checked(name: str) -> str:
    """A name from ktrans's own catalogues (a Keras class): still checked."""
    if not (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)):
        raise CodegenError(f"unsafe Keras name {name!r}")
    return name


def layer_expr(layer: Layer) -> Call:
    """`layers.Dense(512, activation="relu", name="dense")`: required arguments by
    position, the others by name where they differ from Keras's defaults."""
    args: list[Expr] = []
    positional = True
    for a in layer.signature:
        value = layer.config.get(a.name)
        if a.required and positional:
            args.append(value_expr(a, value))
            continue
        positional = False
        if is_default(a, value):
            continue
        args.append(KW(_checked(a.name), value_expr(a, value)))
    if not layer.trainable:
        args.append(KW("trainable", Atom("False")))
    args.append(KW("name", Atom(pystr(layer.name))))
    return Call(Atom(f"layers.{_checked(layer.keras_class())}"), args)


# ---------------------------------------------------------------- expressions as keras.ops

_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "pow": "**"}
_RENAMED = {"exponential": "exp"}
# the names Keras gives the operations of the keras.ops calls written here (and of the
# calls those make): "add", "add_1", ... (keras.src.utils.naming.auto_name)
OP_NAMES = frozenset(
    {
        "absolute",
        "add",
        "ceil",
        "clip",
        "concatenate",
        "cos",
        "elu",
        "erf",
        "exp",
        "expand_dims",
        "floor",
        "gelu",
        "get_item",
        "hard_sigmoid",
        "leaky_relu",
        "log",
        "log_softmax",
        "matmul",
        "max",
        "maximum",
        "mean",
        "min",
        "minimum",
        "multiply",
        "negative",
        "power",
        "prod",
        "reciprocal",
        "relu",
        "relu6",
        "reshape",
        "round",
        "rsqrt",
        "selu",
        "sigmoid",
        "sign",
        "silu",
        "sin",
        "softmax",
        "softplus",
        "softsign",
        "sqrt",
        "square",
        "squeeze",
        "subtract",
        "sum",
        "tanh",
        "transpose",
        "true_divide",
    }
)


def _axis_value(axis: int, rank: int) -> str:
    return "-1" if axis == rank - 1 else str(axis)


def expression_expr(node: Node, names: list[str]) -> Expr:
    """The keras.ops code of an expression node; `names` are its inputs' variables."""
    from transpiler.layers import expression_shapes as shapes
    from transpiler.layers import expressions as ex

    op = node.layer
    x = names[0]
    rank = node.inputs[0].type.rank
    if isinstance(op, ex.Elementwise):
        if len(names) == 2:
            a, b = names
        elif op.scalar_left:
            a, b = lit(op.scalar), x
        else:
            a, b = x, lit(op.scalar)
        symbol = _OPERATORS.get(op.op)
        if symbol is None:
            return call(f"ops.{_checked(op.op)}", Atom(a), Atom(b))
        if symbol == "**":
            # ruff hugs simple operands (names, numbers); a negative base needs parentheses
            if a.startswith("-"):
                return Atom(f"({a}) ** {b}")
            return Atom(f"{a}**{b}")
        return Atom(f"{a} {symbol} {b}")
    if isinstance(op, ex.Unary):
        fn = op.fn
        if fn in ("softmax", "log_softmax"):
            kwargs = {} if op.axis == rank - 1 else {"axis": Atom(str(op.axis))}
            return call(f"ops.{fn}", Atom(x), **kwargs)
        if fn == "linear":
            return call("keras.activations.linear", Atom(x))
        if fn == "mish":  # keras.activations.mish takes no symbolic tensors
            return call("ops.multiply", Atom(x), call("ops.tanh", call("ops.softplus", Atom(x))))
        if fn == "gelu":  # keras.ops.gelu approximates by default; the activation does not
            return call("ops.gelu", Atom(x), approximate=Atom("False"))
        return call(f"ops.{_checked(_RENAMED.get(fn, fn))}", Atom(x))
    if isinstance(op, ex.Reduce):
        axes = op.axes
        axis = _axis_value(axes[0], rank) if len(axes) == 1 else lit(tuple(axes))
        kwargs = {"axis": Atom(axis)}
        if op.keepdims:
            kwargs["keepdims"] = Atom("True")
        return call(f"ops.{_checked(op.fn)}", Atom(x), **kwargs)
    if isinstance(op, ex.MatMul):
        return call("ops.matmul", Atom(names[0]), Atom(names[1]))
    if isinstance(op, ex.Clip):
        return call("ops.clip", Atom(x), Atom(lit(op.lo)), Atom(lit(op.hi)))
    if isinstance(op, shapes.ReshapeTo):
        if all(isinstance(d, int) for d in op.resolved):
            return call("ops.reshape", Atom(x), Atom(lit((-1, *op.resolved))))
        # a dynamic size: keras.ops cannot see the batch size in a functional graph,
        # the Reshape layer can (one layer more than the .kdl model lists)
        target = Atom(lit(tuple(op.target)))
        return call(call("layers.Reshape", target, name=Atom(pystr(op.name))), Atom(x))
    if isinstance(op, shapes.Transpose):
        return call("ops.transpose", Atom(x), axes=Atom(lit(tuple(op.resolved))))
    if isinstance(op, shapes.Concat):
        tensors = Seq("[", "]", [Atom(n) for n in names])
        return call("ops.concatenate", tensors, axis=Atom(_axis_value(op.resolved, rank)))
    if isinstance(op, shapes.ExpandDims):
        return call("ops.expand_dims", Atom(x), axis=Atom(str(op.resolved)))
    if isinstance(op, shapes.Squeeze):
        return call("ops.squeeze", Atom(x), axis=Atom(str(op.resolved)))
    if isinstance(op, shapes.Index):
        return Atom(f"{x}[{_subscript(op.resolved)}]")
    raise CodegenError(f"no Keras code for the expression '{op.describe_config()}'")


_OP_CLASS = {"abs": "absolute", "swish": "silu"}
_OPERATOR_OPS = {
    "add": "add",
    "subtract": "subtract",
    "multiply": "multiply",
    "divide": "true_divide",
    "pow": "power",
}


def _op_names(op: Layer, expr: Expr) -> set[str]:
    """The automatic names (without counters) Keras gives the operations of `expr`."""
    from transpiler.layers.expression_shapes import Index
    from transpiler.layers.expressions import Elementwise

    text = expr.flat()
    names = {_OP_CLASS.get(f, f) for f in re.findall(r"\bops\.(\w+)\(", text)}
    if isinstance(op, Elementwise) and "ops." not in text:
        names.add(_OPERATOR_OPS[op.op])
    if isinstance(op, Index):
        names.add("get_item")
    return names & OP_NAMES


def _keeps_name(op: Layer) -> bool:
    """An expression written as a named layer (a dynamic reshape)."""
    from transpiler.layers.expression_shapes import ReshapeTo

    return isinstance(op, ReshapeTo) and not all(isinstance(d, int) for d in op.resolved)


def _subscript(items) -> str:
    parts = [":"]
    for item in items:
        if item[0] == "index":
            parts.append(str(int(item[1])))
            continue
        _, start, stop, step = item
        text = f"{'' if start is None else int(start)}:{'' if stop is None else int(stop)}"
        if step not in (None, 1):
            text += f":{int(step)}"
        parts.append(text)
    return ", ".join(parts)


# ---------------------------------------------------------------- the model


def _call_inputs(layer: Layer, names: list[str]) -> list[Expr]:
    """How Keras takes this layer's inputs: a list for merges, `initial_state=` for
    recurrent layers, else positionally."""
    from transpiler.layers.recurrent import Recurrent
    from transpiler.layers.recurrent_wrappers import Bidirectional

    if layer.family == "merge":
        return [Seq("[", "]", [Atom(n) for n in names])]
    if isinstance(layer, (Recurrent, Bidirectional)) and len(names) > 1:
        states = Seq("[", "]", [Atom(n) for n in names[1:]])
        return [Atom(names[0]), KW("initial_state", states)]
    return [Atom(n) for n in names]


@dataclass
class Line:
    """A statement of build_model's body."""

    targets: list[str] | None = None  # None: a comment or a blank line
    expr: Expr | None = None
    text: str = ""


def _block_names(program) -> dict[str, str]:
    """snake_case(block name) -> block name, to name a block instance's definition."""
    if program is None:
        return {}
    return {snake_case(name): name for name in getattr(program, "blocks", {})}


def _scope_comments(old: tuple[str, ...], new: tuple[str, ...], blocks: dict[str, str]):
    """`# block residual_block_1 (ResidualBlock)` for each block entered, nested ones
    indented inside the comment."""
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    lines = []
    for depth in range(same, len(new)):
        instance = new[depth]
        base = re.sub(r"_\d+$", "", instance)
        definition = blocks.get(instance) or blocks.get(base)
        text = f"block {instance} ({definition})" if definition else f"block {instance}"
        lines.append("# " + "  " * min(depth, 8) + _comment(text))
    return lines


class KerasWriter:
    def __init__(self, graph: Graph, program=None) -> None:
        self.graph = graph
        self.blocks = _block_names(program)
        self.namer = Namer()
        self.var: dict[int, str] = {}  # id(Value) -> variable
        self.layer_var: dict[int, str] = {}  # id(Layer) -> variable of a shared layer
        self.lines: list[Line] = []
        self.defined: set[int] = set()  # shared layers already created
        self.uses_ops = False
        self.op_names: set[str] = set()  # Keras's names of the operations written

    # ------------------------------------------------------------ names

    def _consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, node in enumerate(self.graph.nodes):
            for v in node.inputs:
                out.setdefault(id(v), [])
                if not out[id(v)] or out[id(v)][-1] != i:
                    out[id(v)].append(i)
        return out

    def _plan_names(self) -> None:
        graph = self.graph
        for v in graph.inputs:
            self.var[id(v)] = self.namer.fresh(v.name)
        output_of: dict[int, str] = {}
        for name, v in graph.outputs.items():
            output_of.setdefault(id(v), name)
        consumers = self._consumers()
        chain = None
        calls: dict[int, int] = {}
        for node in graph.nodes:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
        for i, node in enumerate(graph.nodes):
            if calls[id(node.layer)] > 1 and id(node.layer) not in self.layer_var:
                self.layer_var[id(node.layer)] = self.namer.fresh(f"{node.layer.name}_layer")
            hints = _output_hints(node)
            for j, v in enumerate(node.outputs):
                if id(v) in output_of:
                    hint = output_of[id(v)]
                elif len(node.outputs) == 1 and consumers.get(id(v)) == [i + 1]:
                    if chain is None:
                        chain = self.namer.fresh("x")
                    self.var[id(v)] = chain
                    continue
                else:
                    hint = hints[j]
                self.var[id(v)] = self.namer.fresh(hint)

    # ------------------------------------------------------------ statements

    def body(self) -> list[str]:
        self._plan_names()
        graph = self.graph
        for v in graph.inputs:
            kwargs = {"shape": Atom(lit(tuple(_dim(d) for d in v.type.shape[1:])))}
            if v.type.dtype != "float32":
                kwargs["dtype"] = Atom(pystr(v.type.dtype))
            kwargs["name"] = Atom(pystr(v.name))
            self.lines.append(Line([self.var[id(v)]], call("keras.Input", **kwargs)))
        at = len(self.lines)  # where reserve_op_names goes, once the ops are known
        scope: tuple[str, ...] = ()
        for node in graph.nodes:
            if node.scope != scope:
                comments = _scope_comments(scope, node.scope, self.blocks)
                if comments or not node.scope:
                    self.lines.append(Line())
                self.lines += [Line(text=c) for c in comments]
                scope = node.scope
            self.node(node)
        self.lines[at:at] = self.reserve_op_names()
        self.lines.append(Line())
        self.lines.append(Line(["model"], self.model_expr()))
        self.lines.append(Line(text="return model"))
        out: list[str] = []
        for line in self.lines:
            if line.expr is None:
                if line.text:
                    out.append(" " * INDENT + line.text)
                elif out and out[-1]:
                    out.append("")
                continue
            if line.targets == ["for"]:  # the loop of reserve_op_names
                out += render(line.expr, INDENT, "for prefix, last in ", ":")
                out.append(" " * 2 * INDENT + "while keras.backend.get_uid(prefix) <= last:")
                out.append(" " * 3 * INDENT + "pass")
                continue
            out += render(line.expr, INDENT, f"{', '.join(line.targets)} = ")
        return out

    def reserve_op_names(self) -> list[Line]:
        """keras.ops calls get automatic names ("add", "add_1", ...) from global counters,
        and a model's operation names must be unique: where a layer's explicit name has
        that form, start the counter after it."""
        last: dict[str, int] = {}
        names = [n.layer.name for n in self.graph.nodes if n.layer.family != "expression"]
        names += [
            n.layer.name
            for n in self.graph.nodes
            if n.layer.family == "expression" and _keeps_name(n.layer)
        ]
        for name in names:
            m = re.fullmatch(r"(.+?)(?:_(\d+))?", name)
            if m and m.group(1) in self.op_names:
                number = int(m.group(2) or 0)
                last[m.group(1)] = max(last.get(m.group(1), -1), number)
        if not last:
            return []
        pairs = [Seq("(", ")", [Atom(pystr(p)), Atom(str(n))]) for p, n in sorted(last.items())]
        return [
            Line(),
            Line(text="# keras.ops calls are named automatically (add, add_1, ...), and names"),
            Line(text="# are unique in a model: number them after the layers named that way"),
            Line(["for"], Seq("(", ")", pairs)),
        ]

    def node(self, node: Node) -> None:
        names = [self.var[id(v)] for v in node.inputs]
        targets = [self.var[id(v)] for v in node.outputs]
        layer = node.layer
        if layer.family == "expression":
            expr = expression_expr(node, names)
            self.uses_ops = self.uses_ops or "ops." in expr.flat()
            self.op_names |= _op_names(layer, expr)
            self.lines.append(Line(targets, expr))
            return
        inputs = _call_inputs(layer, names)
        if any("." in n for n in _layer_names(layer)) and id(layer) not in self.defined:
            self.lines.append(
                Line(text="# Keras's torch backend takes no '.' in layer names (TF and JAX do)")
            )
        shared = self.layer_var.get(id(layer))
        if shared is not None:
            if id(layer) not in self.defined:
                self.defined.add(id(layer))
                self.lines.append(Line([shared], layer_expr(layer)))
            expr: Expr = Call(Atom(shared), inputs)
        else:
            expr = Call(layer_expr(layer), inputs)
        width = len(" " * INDENT + ", ".join(targets) + " = ")
        if len(targets) > 1 and width > LINE // 2:
            # a long unpacking: one output per line
            whole = self.namer.fresh(f"{layer.name}_outputs")
            self.lines.append(Line([whole], expr))
            for i, t in enumerate(targets):
                self.lines.append(Line([t], Atom(f"{whole}[{i}]")))
            return
        self.lines.append(Line(targets, expr))

    def model_expr(self) -> Expr:
        graph = self.graph
        ins = [Atom(self.var[id(v)]) for v in graph.inputs]
        inputs = ins[0] if len(ins) == 1 else Seq("[", "]", ins)
        outs = list(graph.outputs.items())
        if len(outs) == 1:
            outputs: Expr = Atom(self.var[id(outs[0][1])])
        else:
            outputs = Seq("{", "}", [Pair(pystr(n), Atom(self.var[id(v)])) for n, v in outs])
        return call("keras.Model", inputs=inputs, outputs=outputs, name=Atom(pystr(graph.name)))


def _layer_names(layer: Layer) -> list[str]:
    """The layer's name and those of the layers it wraps."""
    inner = [v for v in layer.config.values() if isinstance(v, Layer)]
    return [layer.name, *(n for v in inner for n in _layer_names(v))]


def _output_hints(node: Node) -> list[str]:
    """Variable names for a node's outputs: the layer's, then its states'
    (`lstm`, `lstm_h`, `lstm_c`)."""
    from transpiler.layers.recurrent import Recurrent
    from transpiler.layers.recurrent_wrappers import Bidirectional

    layer = node.layer
    base = node.outputs[0].name.split(":")[0]
    n = len(node.outputs)
    names = [base] + [f"{base}_out{i}" for i in range(1, n)]
    if isinstance(layer, Recurrent) and n == 1 + len(layer.state_names):
        names = [base] + [f"{base}_{s}" for s in layer.state_names]
    elif isinstance(layer, Bidirectional):
        heads = [base] if layer.merge_mode else [f"{base}_fwd", f"{base}_bwd"]
        states = [f"{base}_fwd_{s}" for s in layer.forward_layer.state_names]
        states += [f"{base}_bwd_{s}" for s in layer.backward_layer.state_names]
        if len(heads) + (len(states) if layer.return_state else 0) == n:
            names = heads + (states if layer.return_state else [])
    return names


def _dim(d):
    return d if isinstance(d, int) and not isinstance(d, bool) else None


# ---------------------------------------------------------------- compile() and fit()


def _nondefault(entry, kwargs: dict, skip: tuple[str, ...] = ()) -> dict[str, Expr]:
    from transpiler.training.config import defaults

    base = defaults(entry) if entry is not None else {}
    out = {}
    for key, value in kwargs.items():
        if key in skip or (key in base and _normal(base[key]) == _normal(value)):
            continue
        out[_checked(key)] = _train_value(value)
    return out


def _train_value(value) -> Expr:
    from transpiler.training.config import ScheduleSpec

    if isinstance(value, ScheduleSpec):
        from transpiler.training.schedules import SCHEDULES

        entry = SCHEDULES.find(value.name)
        kwargs = _nondefault(entry, value.kwargs)
        return call(f"keras.optimizers.schedules.{_checked(value.name)}", **kwargs)
    return Atom(lit(value))


def compile_lines(config) -> tuple[list[str], list[str]]:
    """(lines of compile_model's body, lines of the FIT_ARGS assignment)."""
    from transpiler.training.config import TrainConfig
    from transpiler.training.losses import LOSSES
    from transpiler.training.metrics import METRICS
    from transpiler.training.optimizers import OPTIMIZERS

    opt = config.optimizer
    optimizer = call(
        f"keras.optimizers.{_checked(opt.name)}",
        **_nondefault(OPTIMIZERS.find(opt.name), opt.kwargs),
    )
    outputs = list(config.outputs)
    single = len(outputs) == 1

    def loss_expr(spec) -> Expr:
        kwargs = _nondefault(LOSSES.find(spec.name), spec.kwargs)
        return call(f"keras.losses.{_checked(spec.keras_class)}", **kwargs)

    def metric_expr(spec) -> Expr:
        kwargs = _nondefault(METRICS.find(spec.name), spec.kwargs, skip=("name",))
        if spec.log_name != spec.name:
            kwargs["name"] = Atom(pystr(spec.log_name))
        return call(f"keras.metrics.{_checked(spec.keras_class)}", **kwargs)

    def per_output(values: dict, make, empty) -> Expr | None:
        if not values:
            return None
        if single:
            return make(values[outputs[0]]) if outputs[0] in values else None
        return Seq(
            "{", "}", [Pair(pystr(o), make(values[o]) if o in values else empty) for o in outputs]
        )

    kwargs: dict[str, Expr] = {"optimizer": optimizer}
    loss = per_output(config.loss, loss_expr, Atom("None"))
    if loss is not None:
        kwargs["loss"] = loss
    if any(w != 1.0 for w in config.loss_weights.values()):
        if single:
            kwargs["loss_weights"] = Seq("[", "]", [Atom(lit(config.loss_weights[outputs[0]]))])
        else:
            kwargs["loss_weights"] = Seq(
                "{",
                "}",
                [Pair(pystr(o), Atom(lit(w))) for o, w in config.loss_weights.items()],
            )
    for key in ("metrics", "weighted_metrics"):
        values = {o: ms for o, ms in getattr(config, key).items() if ms}

        def make(ms):
            return Seq("[", "]", [metric_expr(m) for m in ms])

        expr = per_output(values, make, Seq("[", "]", []))
        if expr is not None:
            kwargs[key] = expr
    if config.steps_per_execution != 1:
        kwargs["steps_per_execution"] = Atom(lit(config.steps_per_execution))
    body = render(call("model.compile", **kwargs), INDENT)

    defaults = {f.name: f.default for f in TrainConfig.__dataclass_fields__.values()}
    fit = {}
    for key in (
        "batch_size",
        "epochs",
        "validation_split",
        "shuffle",
        "steps_per_epoch",
        "initial_epoch",
        "validation_steps",
        "validation_batch_size",
        "validation_freq",
        "verbose",
    ):
        value = getattr(config, key)
        if key in ("batch_size", "epochs") or value != defaults.get(key):
            fit[key] = value
    fit_expr = Seq("{", "}", [Pair(pystr(k), Atom(lit(v))) for k, v in fit.items()])
    lines = render(fit_expr, 0, "FIT_ARGS = ")
    callbacks = [_checked(c.name) for c in config.callbacks]
    if callbacks:
        note = "# not generated: the train block's callbacks, " + ", ".join(callbacks)
        if len(note) > LINE:
            note = f"# not generated: the train block's {len(callbacks)} callbacks"
        lines.append(note)
    return body, lines


# ---------------------------------------------------------------- the module


def _template():
    import jinja2

    try:
        from importlib import resources

        text = resources.files("transpiler.templates").joinpath("keras_model.py.j2").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        here = Path(__file__).resolve().parents[3] / "templates" / "keras_model.py.j2"
        text = here.read_text("utf-8")
    env = jinja2.Environment(
        autoescape=False,  # Python code, not HTML: every value is checked code already
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.from_string(text)


def generate_keras(graph: Graph, program=None, source: str | None = None) -> str:
    """The Python source of a module whose `build_model()` returns `graph` in Keras 3."""
    writer = KerasWriter(graph, program)
    try:
        body = writer.body()
        config = graph.trains.get("default") if graph.trains else None
        compile_body, fit_args = compile_lines(config) if config is not None else ([], [])
    except CodegenError as e:
        _fail(f"cannot generate Keras code for model '{graph.name}': {e}")
    source_name = Path(source).name if source else None
    if source_name is not None and not re.fullmatch(r"[\w.\-]{1,60}", source_name, re.ASCII):
        source_name = None
    layers_count = sum(1 for la in graph.layers if la.family != "expression")
    code = _template().render(
        model=graph.name if is_safe_name_text(graph.name) else "",
        source=source_name,
        version=__version__,
        layers=layers_count,
        params=f"{graph.param_count:,}",
        uses_ops=writer.uses_ops,
        body=body,
        compile_body=compile_body,
        fit_args=fit_args,
        train_name=config.name if config is not None and is_safe_name_text(config.name) else "",
    )
    try:
        ast.parse(code)
    except SyntaxError as e:  # a bug in the generator, never in the input
        raise CodegenError(f"generated code does not parse: {e}") from None
    return code


def is_safe_name_text(text: str) -> bool:
    """Text that may appear in a docstring or comment as it is."""
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-]{1,60}", text or ""))
