"""The Keras-style summary table of a Graph (`ktrans summary`)."""

from __future__ import annotations

from transpiler.graph.model import Graph, Node
from transpiler.graph.types import keras_shape


def _size(n_params: int) -> str:
    """Keras's readable size of float32 parameters: '2.55 MB'."""
    size = n_params * 4
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _shapes(node: Node) -> str:
    shapes = [keras_shape(v.type.shape) for v in node.outputs]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def summary_rows(graph: Graph) -> list[tuple[str, str, str, str]]:
    """(layer (type), output shape, params, connected to) per row, Keras's order."""
    rows = []
    sequential = graph.is_sequential()
    if not sequential:
        for v in graph.inputs:
            rows.append((f"{v.name} (InputLayer)", keras_shape(v.type.shape), "0", "-"))
    seen: set[int] = set()
    for node in graph.nodes:
        layer = node.layer
        first = id(layer) not in seen
        seen.add(id(layer))
        if sequential and not first:
            continue
        params = f"{layer.param_count:,}" if first else "0 (shared)"
        connected = ", ".join(_source(v) for v in node.inputs)
        rows.append((f"{layer.name} ({layer.keras_class()})", _shapes(node), params, connected))
    return rows


def _source(v) -> str:
    if v.producer is None:
        return v.name
    node = v.producer
    suffix = f"[{node.call_index}][{v.index}]"
    return f"{node.layer.name}{suffix}"


def render_summary(graph: Graph, width: int | None = None) -> str:
    """The table as Keras 3 prints it, with box-drawing rules."""
    sequential = graph.is_sequential()
    rows = summary_rows(graph)
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if not sequential:
        headers.append("Connected to")
    cells = [list(r[: len(headers)]) for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    widths = [w + 2 for w in widths]

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def row(values, sep="│", align=None):
        parts = []
        for i, (v, w) in enumerate(zip(values, widths)):
            parts.append(" " + (v.rjust(w) if i == 2 else v.ljust(w)) + " ")
        return sep + sep.join(parts) + sep

    out = [f'Model: "{graph.name}"']
    out.append(line("┏", "┳", "┓", "━"))
    out.append(row(headers, "┃"))
    out.append(line("┡", "╇", "┩", "━"))
    for i, r in enumerate(cells):
        out.append(row(r))
        if i != len(cells) - 1 and not sequential:
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    total, trainable = graph.param_count, graph.trainable_count
    out.append(f" Total params: {total:,} ({_size(total)})")
    out.append(f" Trainable params: {trainable:,} ({_size(trainable)})")
    out.append(f" Non-trainable params: {total - trainable:,} ({_size(total - trainable)})")
    return "\n".join(out)
