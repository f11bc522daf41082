"""Graphviz diagrams of any ONNX model, in the spirit of Netron's static view.

One rounded box per op, coloured by what kind of op it is, with its key attributes and
the initializers (weights) it reads folded into the box instead of drawn as nodes.
Graph inputs and outputs are ellipses. Edges carry the tensor shapes that ONNX shape
inference finds; subgraphs (If branches, Loop/Scan bodies) are dashed clusters beside
their owner, with edges from the outer-scope values they read.

Everything a file supplies (names, dim params, strings) is escaped before it reaches
DOT, and node ids come from positions in the graph, never from names, so any ONNX file
draws, and the same file always gives the same DOT text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import graphviz
import onnx
from google.protobuf.message import Error as ProtobufError
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, TypeProto

from transpiler.errors import KdlError, KdlErrors

RANKDIRS = ("TB", "LR", "BT", "RL")

_FONT = "Helvetica"
_NAME_LIMIT = 40  # longest name shown in a label before it is shortened in the middle
_MAX_ATTR_LINES = 5
_MAX_WEIGHT_LINES = 5

# (category, fill colour, op types); first match wins, unknown ops are "other"
_CATEGORIES: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "conv",
        "#a9c7ef",
        frozenset({"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"}),
    ),
    (
        "pool",
        "#b9e2b0",
        frozenset(
            {
                "MaxPool",
                "AveragePool",
                "LpPool",
                "GlobalAveragePool",
                "GlobalMaxPool",
                "GlobalLpPool",
                "MaxRoiPool",
                "MaxUnpool",
                "RoiAlign",
            }
        ),
    ),
    (
        "gemm",
        "#cdbdea",
        frozenset({"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "Einsum", "FusedMatMul"}),
    ),
    (
        "norm",
        "#f7d59c",
        frozenset(
            {
                "BatchNormalization",
                "InstanceNormalization",
                "LayerNormalization",
                "GroupNormalization",
                "RMSNormalization",
                "SkipLayerNormalization",
                "LpNormalization",
                "MeanVarianceNormalization",
                "LRN",
                "Dropout",
            }
        ),
    ),
    (
        "activation",
        "#f3aaa2",
        frozenset(
            {
                "Relu",
                "LeakyRelu",
                "PRelu",
                "Sigmoid",
                "HardSigmoid",
                "Tanh",
                "Softmax",
                "LogSoftmax",
                "Hardmax",
                "Elu",
                "Selu",
                "Celu",
                "Gelu",
                "Softplus",
                "Softsign",
                "ThresholdedRelu",
                "HardSwish",
                "Mish",
                "Swish",
                "Clip",
                "FastGelu",
                "QuickGelu",
                "BiasGelu",
            }
        ),
    ),
    (
        "math",
        "#fff3b0",
        frozenset(
            {
                "Add",
                "Sub",
                "Mul",
                "Div",
                "Pow",
                "Mod",
                "Sqrt",
                "Exp",
                "Log",
                "Abs",
                "Neg",
                "Reciprocal",
                "Floor",
                "Ceil",
                "Round",
                "Sign",
                "Erf",
                "Min",
                "Max",
                "Mean",
                "Sum",
                "And",
                "Or",
                "Xor",
                "Not",
                "Equal",
                "Greater",
                "Less",
                "GreaterOrEqual",
                "LessOrEqual",
                "Where",
                "IsNaN",
                "IsInf",
                "Sin",
                "Cos",
                "Tan",
                "Asin",
                "Acos",
                "Atan",
                "Sinh",
                "Cosh",
                "Asinh",
                "Acosh",
                "Atanh",
                "BitShift",
                "BitwiseAnd",
                "BitwiseOr",
                "BitwiseXor",
                "BitwiseNot",
                "CumSum",
                "ArgMax",
                "ArgMin",
                "TopK",
                "Det",
            }
        ),
    ),
    (
        "shape",
        "#dedede",
        frozenset(
            {
                "Reshape",
                "Flatten",
                "Squeeze",
                "Unsqueeze",
                "Transpose",
                "Concat",
                "Split",
                "Slice",
                "Gather",
                "GatherElements",
                "GatherND",
                "Scatter",
                "ScatterElements",
                "ScatterND",
                "Shape",
                "Size",
                "Expand",
                "Tile",
                "Pad",
                "Identity",
                "Constant",
                "ConstantOfShape",
                "Cast",
                "CastLike",
                "Resize",
                "Upsample",
                "DepthToSpace",
                "SpaceToDepth",
                "Range",
                "NonZero",
                "OneHot",
                "Trilu",
                "Compress",
                "ReverseSequence",
                "EyeLike",
                "CenterCropPad",
                "SplitToSequence",
                "ConcatFromSequence",
                "SequenceConstruct",
                "SequenceAt",
                "SequenceInsert",
                "SequenceErase",
                "SequenceEmpty",
                "SequenceLength",
            }
        ),
    ),
    ("control", "#f1bce0", frozenset({"If", "Loop", "Scan", "SequenceMap"})),
)
_OTHER_FILL = "#ffffff"
_FILLS = {name: fill for name, fill, _ in _CATEGORIES}
_IO_FILL = "#e9eef4"

# shape inference names the dims it cannot pin down unk__0, unk__1...: those are just "?"
_ANONYMOUS_DIM = re.compile(r"unk__\d+")
_INT_TYPES = frozenset(
    {
        TensorProto.INT8,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.UINT8,
        TensorProto.UINT16,
        TensorProto.UINT32,
        TensorProto.UINT64,
        TensorProto.BOOL,
    }
)
# attribute names shown shorter than ONNX spells them
_ATTR_NAMES = {"kernel_shape": "kernel"}
# attributes printed as 3×3 rather than 3,3
_SPATIAL = {"kernel_shape", "strides", "dilations", "output_padding", "output_shape"}


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX model file, turning every way that can fail into a `KdlErrors`.

    External tensor data is not loaded: a diagram needs shapes, not weights.
    """
    p = Path(path)
    hint = "expected a binary ONNX model (a ModelProto), e.g. from `ktrans build` or torch.onnx"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        _fail(f"no such file: '{p}'")
    except IsADirectoryError:
        _fail(f"'{p}' is a directory, not an ONNX file")
    except OSError as e:
        _fail(f"cannot read '{p}': {e.strerror or e}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (ProtobufError, ValueError, RuntimeError) as e:
        _fail(f"'{p}' is not an ONNX file: it does not parse as a model ({e})", hint)
    # random bytes sometimes parse as a protobuf; a real model has both of these
    if not data or model.ir_version <= 0 or not model.HasField("graph"):
        _fail(f"'{p}' is not an ONNX file: no IR version or no graph in it", hint)
    return model


def onnx_digraph(
    model: onnx.ModelProto, *, rankdir: str = "TB", title: str | None = None
) -> graphviz.Digraph:
    """Build a Graphviz diagram of `model` (see the module docstring for what it shows).

    Shape inference runs on a copy; when it fails the diagram is drawn with whatever
    shapes the file itself records. `rankdir` is TB, LR, BT or RL.
    """
    if rankdir not in RANKDIRS:
        _fail(f"unknown diagram direction '{rankdir}'", f"use one of: {', '.join(RANKDIRS)}")
    dot = graphviz.Digraph(name="onnx")
    dot.attr(
        rankdir=rankdir,
        fontname=_FONT,
        nodesep="0.3",
        ranksep="0.35",
        compound="true",
        newrank="true",
    )
    dot.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fillcolor=_OTHER_FILL,
        fontname=_FONT,
        fontsize="11",
        margin="0.12,0.04",
        penwidth="0.8",
    )
    dot.attr(
        "edge",
        fontname=_FONT,
        fontsize="9",
        color="#666666",
        fontcolor="#444444",
        arrowsize="0.6",
        penwidth="0.8",
    )
    if title:
        dot.attr(label=f"<<B>{_esc(title, 120)}</B>>", labelloc="t", fontsize="16")
    _Drawer(dot, _opsets(model)).graph(_inferred(model).graph, dot, _Scope(None), "", main=True)
    return dot


# ---------------------------------------------------------------------------- drawing


@dataclass
class _Scope:
    """Names visible in one graph; a subgraph's scope chains to its owner's."""

    parent: _Scope | None
    producers: dict[str, str] = field(default_factory=dict)  # value -> id of node making it
    weights: dict[str, TensorProto] = field(default_factory=dict)  # initializer (or alias) name
    types: dict[str, TypeProto] = field(default_factory=dict)  # value -> inferred type

    def find(self, table: str, name: str):
        scope: _Scope | None = self
        while scope is not None:
            found = getattr(scope, table).get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None


class _Drawer:
    def __init__(self, root: graphviz.Digraph, opsets: dict[str, int]) -> None:
        self.root = root
        self.opsets = opsets
        # edges go on the root graph once everything is placed: an edge written inside a
        # cluster would drag an outer-scope producer into that cluster
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.missing: dict[str, str] = {}

    def graph(
        self, g: GraphProto, box: graphviz.Digraph, scope: _Scope, prefix: str, *, main: bool
    ) -> str | None:
        """Draw `g` into `box`; returns the id of one of its output nodes (for cluster edges)."""
        for init in g.initializer:
            scope.weights[init.name] = init
        for sparse in g.sparse_initializer:
            scope.weights[sparse.values.name] = sparse.values
        for vi in [*g.input, *g.output, *g.value_info]:
            if vi.HasField("type"):
                scope.types.setdefault(vi.name, vi.type)

        size = "11" if main else "10"
        io_fill = _IO_FILL if main else _OTHER_FILL  # a subgraph's ports are not the model's
        for i, vi in enumerate(g.input):
            if vi.name in scope.weights:  # IR < 4 lists initializers as inputs too
                continue
            nid = f"{prefix}in{i}"
            box.node(
                nid,
                label=self._io_label(vi.name, scope),
                shape="ellipse",
                fillcolor=io_fill,
                fontsize=size,
                tooltip=_tip(vi.name),
            )
            scope.producers[vi.name] = nid

        # register every output first so a file whose nodes are out of order still links up
        drawn: list[tuple[str, NodeProto]] = []
        graph_outputs = {vi.name for vi in g.output}
        for i, node in enumerate(g.node):
            nid = f"{prefix}n{i}"
            if _is_weight_alias(node, scope, graph_outputs):
                # torch.onnx shares equal initializers through Identity nodes: one floating
                # box per Conv bias is clutter, so the alias counts as a weight itself
                scope.weights[node.output[0]] = scope.find("weights", node.input[0])
                continue
            drawn.append((nid, node))
            for out in node.output:
                if out:
                    scope.producers.setdefault(out, nid)
        for nid, node in drawn:
            self.node(node, nid, box, scope)

        first_out = None
        for i, vi in enumerate(g.output):
            nid = f"{prefix}out{i}"
            first_out = first_out or nid
            box.node(
                nid,
                label=self._io_label(vi.name, scope),
                shape="ellipse",
                peripheries="2",
                fillcolor=io_fill,
                fontsize=size,
                tooltip=_tip(vi.name),
            )
            self.link(vi.name, nid, scope)

        if main:
            for tail, head, attrs in self.edges:
                self.root.edge(tail, head, **attrs)
        return first_out or (drawn[0][0] if drawn else None)

    def node(self, node: NodeProto, nid: str, box: graphviz.Digraph, scope: _Scope) -> None:
        fill = _fill(node.op_type)
        lines = []
        if node.domain not in ("", "ai.onnx"):
            lines.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{_esc(node.domain)}</FONT>')
        lines += [_esc(s, 60) for s in self._attr_lines(node)]
        weights = [_weight_line(n, scope.find("weights", n)) for n in node.input if n]
        weights = [w for w in weights if w is not None]
        if len(weights) > _MAX_WEIGHT_LINES:
            more = len(weights) - _MAX_WEIGHT_LINES + 1
            weights = [*weights[: _MAX_WEIGHT_LINES - 1], f"+{more} more"]
        lines += [f'<FONT COLOR="#333333">{_esc(w, 70)}</FONT>' for w in weights]
        label = f"<B>{_esc(node.op_type)}</B>"
        if lines:
            label += '<BR/><FONT POINT-SIZE="9">' + "<BR/>".join(lines) + "</FONT>"
        box.node(nid, label=f"<{label}>", fillcolor=fill, tooltip=_tip(node.name or node.op_type))

        for name in node.input:
            if name and scope.find("weights", name) is None:
                self.link(name, nid, scope)

        for k, attr in enumerate(node.attribute):
            if attr.type == AttributeProto.GRAPH:
                subs = [attr.g]
            elif attr.type == AttributeProto.GRAPHS:
                subs = list(attr.graphs)
            else:
                continue
            for j, sub in enumerate(subs):
                sub_prefix = f"{nid}_{k}_{j}_"
                cluster = f"cluster_{sub_prefix}"
                caption = f"{node.op_type} · {attr.name}" + (f"[{j}]" if len(subs) > 1 else "")
                with box.subgraph(name=cluster) as c:
                    c.attr(
                        label=f"<<I>{_esc(caption)}</I>>",
                        style="dashed,rounded",
                        color="#888888",
                        fontsize="10",
                        fontcolor="#444444",
                    )
                    anchor = self.graph(sub, c, _Scope(scope), sub_prefix, main=False)
                if anchor is not None:
                    # the subgraph's results become the owner's: one dashed edge cluster->owner
                    self.edges.append(
                        (
                            anchor,
                            nid,
                            {"ltail": cluster, "style": "dashed", "arrowhead": "empty"},
                        )
                    )

    def link(self, name: str, head: str, scope: _Scope) -> None:
        tail = scope.find("producers", name)
        if tail is None:
            tail = self.missing.get(name)
            if tail is None:
                tail = self.missing[name] = f"missing{len(self.missing)}"
                self.root.node(
                    tail,
                    label=f"<{_esc(name)}<BR/><I>(no producer)</I>>",
                    shape="box",
                    style="dashed",
                    fontcolor="#aa0000",
                    tooltip=_tip(name),
                )
        attrs = {"tooltip": _tip(name)}
        tp = scope.find("types", name)
        text = _edge_text(tp) if tp is not None else None
        if text:
            attrs["label"] = f"<{_esc(text, 60)}>"
        self.edges.append((tail, head, attrs))

    def _io_label(self, name: str, scope: _Scope) -> str:
        tp = scope.find("types", name)
        dtype, shape = _type_text(tp) if tp is not None else ("?", None)
        detail = (
            dtype if not shape else f"{dtype} scalar" if shape == "scalar" else f"{dtype} ⟨{shape}⟩"
        )
        return f'<<B>{_esc(name)}</B><BR/><FONT POINT-SIZE="9">{_esc(detail, 60)}</FONT>>'

    def _attr_lines(self, node: NodeProto) -> list[str]:
        defaults = _schema_defaults(node, self.opsets)
        lines = []
        for attr in node.attribute:
            if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                continue  # drawn as a cluster
            if attr.ref_attr_name:
                lines.append(f"{attr.name} = @{attr.ref_attr_name}")
                continue
            if _is_default(attr, defaults.get(attr.name)):
                continue
            text = _attr_value(attr)
            if text is not None:
                shown = _ATTR_NAMES.get(attr.name, attr.name)
                lines.append(f"{shown} {text}" if text else shown)
        if len(lines) > _MAX_ATTR_LINES:
            more = len(lines) - _MAX_ATTR_LINES + 1
            lines = [*lines[: _MAX_ATTR_LINES - 1], f"+{more} more"]
        return lines


# ---------------------------------------------------------------------------- helpers


def _fail(message: str, hint: str | None = None) -> NoReturn:
    raise KdlErrors([KdlError(None, message, hint)])


def _inferred(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception:  # inference is a nicety: any model, valid or not, still draws
        return model


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    opsets = {o.domain or "": o.version for o in model.opset_import}
    if "ai.onnx" in opsets:
        opsets.setdefault("", opsets["ai.onnx"])
    return opsets


def category(op_type: str) -> str:
    """The colour group of an op type: conv, pool, gemm, norm, activation, math, shape,
    control or other."""
    for name, _, ops in _CATEGORIES:
        if op_type in ops:
            return name
    return "math" if op_type.startswith("Reduce") else "other"


def _fill(op_type: str) -> str:
    return _FILLS.get(category(op_type), _OTHER_FILL)


def _esc(text: str, limit: int = _NAME_LIMIT) -> str:
    """Make file-supplied text safe inside an HTML-like label: printable, short, escaped."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return html.escape(_shorten(text, limit), quote=False)


def _tip(text: str) -> str:
    """A plain (non-HTML) attribute value: printable, with backslashes made literal."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:200])
    return graphviz.escape(text)


def _dtype(elem_type: int) -> str:
    try:
        name = TensorProto.DataType.Name(elem_type)
    except ValueError:
        return "?"
    if name == "UNDEFINED":
        return "?"
    return {"FLOAT": "float32", "DOUBLE": "float64"}.get(name, name.lower())


def _dims(dims) -> str:
    return "×".join(str(d) for d in dims) if len(dims) else "scalar"


def _type_text(tp: TypeProto) -> tuple[str, str | None]:
    """(dtype, shape) for display; shape is None when the rank is unknown."""
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(tp, kind)
        shape = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(str(d.dim_value))
                elif d.HasField("dim_param") and not _ANONYMOUS_DIM.fullmatch(d.dim_param):
                    dims.append(d.dim_param)
                else:
                    dims.append("?")
            shape = _dims(dims)
        prefix = "sparse " if kind == "sparse_tensor_type" else ""
        return prefix + _dtype(tt.elem_type), shape
    if kind == "sequence_type":
        inner, shape = _type_text(tp.sequence_type.elem_type)
        return f"seq({inner})", shape
    if kind == "optional_type":
        inner, shape = _type_text(tp.optional_type.elem_type)
        return f"optional({inner})", shape
    if kind == "map_type":
        value, _ = _type_text(tp.map_type.value_type)
        return f"map({_dtype(tp.map_type.key_type)}, {value})", None
    return "?", None


def _edge_text(tp: TypeProto) -> str | None:
    dtype, shape = _type_text(tp)
    if tp.WhichOneof("value") == "tensor_type":
        return shape
    if dtype == "?":
        return None
    return f"{dtype} {shape}" if shape else dtype


def _small_values(t: TensorProto, limit: int = 8) -> str | None:
    """The values of a scalar or a short integer tensor (a Reshape target, axes, pads).

    Short float tensors (a 2-channel bias) are left as a shape: their values say little.
    """
    count = 1
    for d in t.dims:
        count *= d
    if t.data_location == TensorProto.EXTERNAL or count > limit:
        return None
    if len(t.dims) > 0 and t.data_type not in _INT_TYPES:
        return None
    try:
        values = onnx.numpy_helper.to_array(t).reshape(-1).tolist()
    except (ValueError, TypeError, KeyError, RuntimeError):  # malformed or exotic tensor
        return None
    shown = [_num(v) for v in values]
    return shown[0] if len(t.dims) == 0 and shown else "[" + ", ".join(shown) + "]"


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, bytes):
        return repr(v.decode("utf-8", "replace"))
    return str(v)


def _is_weight_alias(node: NodeProto, scope: _Scope, graph_outputs: set[str]) -> bool:
    return (
        node.op_type == "Identity"
        and node.domain in ("", "ai.onnx")
        and len(node.input) == 1
        and len(node.output) == 1
        and node.output[0] not in graph_outputs
        and scope.find("weights", node.input[0]) is not None
    )


def _weight_line(name: str, t: TensorProto | None) -> str | None:
    """`name ⟨64×3×7×7⟩`, plus the values when there are only a few."""
    if t is None:
        return None
    name = _shorten(name)
    values = _small_values(t)
    if values is not None and len(t.dims) == 0:
        return f"{name} = {values}"
    line = f"{name} ⟨{_dims(t.dims)}⟩"
    return f"{line} = {values}" if values is not None else line


def _shorten(text: str, limit: int = _NAME_LIMIT) -> str:
    """Cut the middle out of a long name: the ends tell layer names apart best."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


def _schema_defaults(node: NodeProto, opsets: dict[str, int]) -> dict[str, AttributeProto]:
    domain = "" if node.domain == "ai.onnx" else node.domain
    version = opsets.get(domain)
    if version is None:
        return {}
    try:
        schema = onnx.defs.get_schema(node.op_type, version, domain)
    except onnx.defs.SchemaError:  # custom or unknown op: no defaults to hide
        return {}
    return {
        name: a.default_value
        for name, a in schema.attributes.items()
        if a.default_value.type != AttributeProto.UNDEFINED
    }


def _is_default(attr: AttributeProto, default: AttributeProto | None) -> bool:
    if attr.type == AttributeProto.INTS:
        # these default to "1 along every axis" / "no padding", which a schema can't spell
        if attr.name in ("strides", "dilations") and all(v == 1 for v in attr.ints):
            return True
        if attr.name == "pads" and all(v == 0 for v in attr.ints):
            return True
    if attr.name == "auto_pad" and attr.s in (b"NOTSET", b""):
        return True
    if default is None:
        return False
    value = onnx.helper.get_attribute_value(attr)
    return value == onnx.helper.get_attribute_value(default)


def _attr_value(attr: AttributeProto) -> str | None:
    t = attr.type
    if t == AttributeProto.INT:
        if attr.name == "to":
            return _dtype(attr.i)
        if attr.name in ("transA", "transB", "ceil_mode", "count_include_pad"):
            return None if attr.i == 0 else ""
        return str(attr.i)
    if t == AttributeProto.FLOAT:
        return f"{attr.f:.4g}"
    if t == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if t == AttributeProto.INTS:
        ints = list(attr.ints)
        if (
            attr.name == "pads"
            and len(ints) % 2 == 0
            and ints[: len(ints) // 2] == ints[len(ints) // 2 :]
        ):
            ints = ints[: len(ints) // 2]  # symmetric: begin == end, show it once
            return "×".join(map(str, ints))
        if attr.name in _SPATIAL:
            return "×".join(map(str, ints))
        return ",".join(map(str, ints[:8])) + (",…" if len(ints) > 8 else "")
    if t == AttributeProto.FLOATS:
        floats = [f"{f:.4g}" for f in attr.floats[:6]]
        return ",".join(floats) + (",…" if len(attr.floats) > 6 else "")
    if t == AttributeProto.STRINGS:
        return ",".join(s.decode("utf-8", "replace") for s in attr.strings[:6])
    if t == AttributeProto.TENSOR:
        values = _small_values(attr.t)
        if values is not None:
            return values
        return f"{_dtype(attr.t.data_type)} ⟨{_dims(attr.t.dims)}⟩"
    if t == AttributeProto.SPARSE_TENSOR:
        return f"sparse ⟨{_dims(attr.sparse_tensor.dims)}⟩"
    return None
