"""The text inside an ONNX diagram: op boxes (key attributes that differ from the
schema's defaults, and the weights an op reads, summarised), input and output ellipses,
and the tensor types on edges.

Everything a file supplies goes through `esc` before it reaches an HTML-like label, and
through `tip` before it reaches a plain attribute (a tooltip).
"""

from __future__ import annotations

import html
import re

import onnx
from onnx import AttributeProto, NodeProto, TensorProto, TypeProto

from transpiler.viz.dot_text import printable, tooltip

_NAME_LIMIT = 40  # longest name shown in a label before it is shortened in the middle
_MAX_ATTR_LINES = 5
_MAX_WEIGHT_LINES = 5

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


# ---------------------------------------------------------------------------- labels


def node_label(
    node: NodeProto, opsets: dict[str, int], inputs: list[tuple[str, TensorProto | None]]
) -> str:
    """An op's box: its type, its domain when not the default one, its attributes, and a
    line for each of `inputs` (name, initializer or None) that is a weight."""
    lines = []
    if node.domain not in ("", "ai.onnx"):
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{esc(node.domain)}</FONT>')
    lines += [esc(s, 60) for s in _attr_lines(node, opsets)]
    weights = [_weight_line(n, t) for n, t in inputs]
    weights = [w for w in weights if w is not None]
    if len(weights) > _MAX_WEIGHT_LINES:
        more = len(weights) - _MAX_WEIGHT_LINES + 1
        weights = [*weights[: _MAX_WEIGHT_LINES - 1], f"+{more} more"]
    lines += [f'<FONT COLOR="#333333">{esc(w, 70)}</FONT>' for w in weights]
    label = f"<B>{esc(node.op_type)}</B>"
    if lines:
        label += '<BR/><FONT POINT-SIZE="9">' + "<BR/>".join(lines) + "</FONT>"
    return f"<{label}>"


def io_label(name: str, tp: TypeProto | None) -> str:
    """A graph input or output: its name over its dtype and shape."""
    dtype, shape = _type_text(tp) if tp is not None else ("?", None)
    detail = (
        dtype if not shape else f"{dtype} scalar" if shape == "scalar" else f"{dtype} ⟨{shape}⟩"
    )
    return f'<<B>{esc(name)}</B><BR/><FONT POINT-SIZE="9">{esc(detail, 60)}</FONT>>'


def edge_label(tp: TypeProto | None) -> str | None:
    """The shape (or, for non-tensors, the type) an edge carries; None when unknown."""
    text = _edge_text(tp) if tp is not None else None
    return f"<{esc(text, 60)}>" if text else None


def esc(text: str, limit: int = _NAME_LIMIT) -> str:
    """Make file-supplied text safe inside an HTML-like label: printable, short, escaped."""
    return html.escape(_shorten(printable(text), limit), quote=False)


def tip(text: str) -> str:
    """A tooltip: printable, with backslashes made literal."""
    return tooltip(text, 200)


# ---------------------------------------------------------------------------- types


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


# ---------------------------------------------------------------------------- weights


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


# ---------------------------------------------------------------------------- attributes


def _attr_lines(node: NodeProto, opsets: dict[str, int]) -> list[str]:
    defaults = _schema_defaults(node, opsets)
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
