"""Graphviz diagrams of any ONNX model, in the spirit of Netron's static view.

One rounded box per op, coloured by what kind of op it is, with its key attributes and
the initializers (weights) it reads folded into the box instead of drawn as nodes.
Graph inputs and outputs are ellipses. Edges carry the tensor shapes that ONNX shape
inference finds; subgraphs (If branches, Loop/Scan bodies) are dashed clusters beside
their owner, with edges from the outer-scope values they read.

Everything a file supplies (names, dim params, strings) is escaped before it reaches
DOT, and node ids come from positions in the graph, never from names, so any ONNX file
draws, and the same file always gives the same DOT text.

This module loads the file and assembles the diagram: boxes, clusters, and the edges
between them across scopes. What the boxes say is in `onnx_labels`, their colours in
`onnx_categories`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import graphviz
import onnx
from google.protobuf.message import Error as ProtobufError
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, TypeProto

from transpiler.errors import KdlError, KdlErrors
from transpiler.input_files import read_regular
from transpiler.limits import MAX_ONNX_BYTES
from transpiler.viz.dot_text import FONT, RANKDIRS
from transpiler.viz.onnx_categories import OTHER_FILL, category, fill
from transpiler.viz.onnx_labels import edge_label, esc, io_label, node_label, tip

__all__ = ["RANKDIRS", "category", "load_onnx", "onnx_digraph"]

_IO_FILL = "#e9eef4"


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX model file, turning every way that can fail into a `KdlErrors`.

    External tensor data is not loaded: a diagram needs shapes, not weights.
    """
    p = Path(path)
    hint = "expected a binary ONNX model (a ModelProto), e.g. from `ktrans build` or torch.onnx"
    # a regular file of at most 2 GB (protobuf's limit), checked before reading: never
    # /dev/zero, a FIFO or a directory
    data = read_regular(p, None, MAX_ONNX_BYTES)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (ProtobufError, ValueError, RuntimeError) as e:
        _fail(f"'{p}' is not an ONNX file: it does not parse as a model ({e})", hint)
    # random bytes sometimes parse as a protobuf; a real model has both of these
    if not data or model.ir_version <= 0 or not model.HasField("graph"):
        _fail(f"'{p}' is not an ONNX file: no IR version or no graph in it", hint)
    field = _non_utf8_text(model)
    if field is not None:
        _fail(f"'{p}' is not a valid ONNX file: its {field} is not UTF-8 text", hint)
    return model


def _non_utf8_text(model: onnx.ModelProto) -> str | None:
    """The first string field (a name, an op type...) that holds bytes that are not UTF-8
    (protobuf then hands them over as bytes, which nothing downstream expects); None when
    all text is text. Walked without recursion: graphs nest in attributes."""
    from google.protobuf.descriptor import FieldDescriptor

    stack = [model]
    while stack:
        message = stack.pop()
        for described, value in message.ListFields():
            values = value if _repeated(described) else [value]
            if described.type == FieldDescriptor.TYPE_STRING:
                if any(isinstance(v, bytes) for v in values):
                    return f"{message.DESCRIPTOR.name}.{described.name}"
            elif described.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(values)
    return None


def _repeated(described) -> bool:
    flag = getattr(described, "is_repeated", None)  # protobuf 6+; `label` before
    return flag if flag is not None else described.label == described.LABEL_REPEATED


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
        fontname=FONT,
        nodesep="0.3",
        ranksep="0.35",
        compound="true",
        newrank="true",
    )
    dot.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fillcolor=OTHER_FILL,
        fontname=FONT,
        fontsize="11",
        margin="0.12,0.04",
        penwidth="0.8",
    )
    dot.attr(
        "edge",
        fontname=FONT,
        fontsize="9",
        color="#666666",
        fontcolor="#444444",
        arrowsize="0.6",
        penwidth="0.8",
    )
    if title:
        dot.attr(label=f"<<B>{esc(title, 120)}</B>>", labelloc="t", fontsize="16")
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
        io_fill = _IO_FILL if main else OTHER_FILL  # a subgraph's ports are not the model's
        for i, vi in enumerate(g.input):
            if vi.name in scope.weights:  # IR < 4 lists initializers as inputs too
                continue
            nid = f"{prefix}in{i}"
            box.node(
                nid,
                label=io_label(vi.name, scope.find("types", vi.name)),
                shape="ellipse",
                fillcolor=io_fill,
                fontsize=size,
                tooltip=tip(vi.name),
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
                label=io_label(vi.name, scope.find("types", vi.name)),
                shape="ellipse",
                peripheries="2",
                fillcolor=io_fill,
                fontsize=size,
                tooltip=tip(vi.name),
            )
            self.link(vi.name, nid, scope)

        if main:
            for tail, head, attrs in self.edges:
                self.root.edge(tail, head, **attrs)
        return first_out or (drawn[0][0] if drawn else None)

    def node(self, node: NodeProto, nid: str, box: graphviz.Digraph, scope: _Scope) -> None:
        inputs = [(n, scope.find("weights", n)) for n in node.input if n]
        box.node(
            nid,
            label=node_label(node, self.opsets, inputs),
            fillcolor=fill(node.op_type),
            tooltip=tip(node.name or node.op_type),
        )

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
                caption = f"{node.op_type} · {attr.name}" + (f"[{j}]" if len(subs) > 1 else "")
                self.subgraph(sub, f"{nid}_{k}_{j}_", caption, nid, box, scope)

    def subgraph(
        self,
        sub: GraphProto,
        prefix: str,
        caption: str,
        owner: str,
        box: graphviz.Digraph,
        scope: _Scope,
    ) -> None:
        """Draw `sub` (an If branch, a Loop or Scan body) as a dashed cluster in `box`,
        its ids starting with `prefix` and its scope chained to `scope`, with one edge
        from the cluster to its owner's node `owner`."""
        cluster = f"cluster_{prefix}"
        with box.subgraph(name=cluster) as c:
            c.attr(
                label=f"<<I>{esc(caption)}</I>>",
                style="dashed,rounded",
                color="#888888",
                fontsize="10",
                fontcolor="#444444",
            )
            anchor = self.graph(sub, c, _Scope(scope), prefix, main=False)
        if anchor is not None:
            # the subgraph's results become the owner's: one dashed edge cluster->owner
            self.edges.append(
                (anchor, owner, {"ltail": cluster, "style": "dashed", "arrowhead": "empty"})
            )

    def link(self, name: str, head: str, scope: _Scope) -> None:
        tail = scope.find("producers", name)
        if tail is None:
            tail = self.missing.get(name)
            if tail is None:
                tail = self.missing[name] = f"missing{len(self.missing)}"
                self.root.node(
                    tail,
                    label=f"<{esc(name)}<BR/><I>(no producer)</I>>",
                    shape="box",
                    style="dashed",
                    fontcolor="#aa0000",
                    tooltip=tip(name),
                )
        attrs = {"tooltip": tip(name)}
        label = edge_label(scope.find("types", name))
        if label:
            attrs["label"] = label
        self.edges.append((tail, head, attrs))


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


def _is_weight_alias(node: NodeProto, scope: _Scope, graph_outputs: set[str]) -> bool:
    return (
        node.op_type == "Identity"
        and node.domain in ("", "ai.onnx")
        and len(node.input) == 1
        and len(node.output) == 1
        and node.output[0] not in graph_outputs
        and scope.find("weights", node.input[0]) is not None
    )
