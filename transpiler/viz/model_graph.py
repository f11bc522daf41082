"""Graphviz diagrams of a checked ktrans model (`ktrans viz model.kdl -o model.svg`).

In the spirit of `keras.utils.plot_model`, with other defaults:

- one box per layer, coloured by its family (a legend under the title lists the families
  that appear); a shared layer is drawn once, with edges from and to all its calls;
- output shapes on the edges, Keras style `(None, 28, 28, 32)`;
- inputs and outputs in dark boxes that stand out, inputs side by side at the top and
  outputs side by side at the bottom;
- expression ops (`x + y`, `relu(x)`, `mean(x)`) as small plain ellipses;
- blocks collapsed to one box per block instance, or drawn as nested clusters.

Node ids are the layer names (which are unique in a model); inputs, outputs and blocks
get ids with a `/`, which no layer name can contain. Everything user-supplied that
reaches a label is HTML-escaped, and the same graph always gives the same DOT text.

This module assembles the diagram: which boxes, clusters and edges there are and where
they go. What the boxes say is in `model_labels`, how they look in `model_style`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import graphviz

from transpiler.graph.call_args import extra_input_roles
from transpiler.graph.model import Graph, Node, Value
from transpiler.graph.types import keras_shape
from transpiler.layers.base import Layer
from transpiler.viz import model_labels as labels
from transpiler.viz import model_style as style
from transpiler.viz.dot_text import RANKDIRS
from transpiler.viz.model_labels import esc, tip
from transpiler.viz.model_style import FAMILY_COLOURS

__all__ = ["FAMILY_COLOURS", "RANKDIRS", "model_digraph"]


def model_digraph(
    graph: Graph,
    *,
    show_shapes: bool = True,
    show_dtype: bool = False,
    show_params: bool = False,
    show_activations: bool = False,
    rankdir: str = "TB",
    expand_blocks: bool = False,
) -> graphviz.Digraph:
    """A Graphviz diagram of `graph` (see the module docstring for what it shows).

    `show_shapes` labels edges with the tensor shapes (`show_dtype` adds the dtype);
    `show_params` adds each layer's parameter count and the total to the title;
    `show_activations` adds the activation of layers that have one; `rankdir` is TB, LR,
    BT or RL; `expand_blocks` draws each block instance as a cluster of its layers instead
    of one box.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}; got {rankdir!r}")
    options = _Options(show_shapes, show_dtype, show_params, show_activations, expand_blocks)
    return _Drawer(graph, options, rankdir).draw()


@dataclass(frozen=True)
class _Options:
    show_shapes: bool
    show_dtype: bool
    show_params: bool
    show_activations: bool
    expand_blocks: bool


@dataclass
class _Cluster:
    """A block instance in expanded mode: its own layers and its nested instances."""

    instance: str
    nodes: list[str] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


class _Drawer:
    def __init__(self, graph: Graph, options: _Options, rankdir: str) -> None:
        self.graph = graph
        self.o = options
        self.rankdir = rankdir
        self.calls: dict[int, list[Node]] = {}  # id(layer) -> its calls, in order
        for node in graph.nodes:
            self.calls.setdefault(id(node.layer), []).append(node)
        self.layers: list[Layer] = [calls[0].layer for calls in self.calls.values()]
        # the scope a layer is drawn in: what all of its calls have in common
        self.home: dict[int, tuple[str, ...]] = {
            key: _common_prefix([n.scope for n in calls]) for key, calls in self.calls.items()
        }
        self.block_types = graph.block_types
        self.families: list[str] = []

    # ------------------------------------------------------------------ structure

    def owner(self, layer: Layer) -> str:
        """The id of the diagram node that stands for `layer`."""
        home = self.home[id(layer)]
        if home and not self.o.expand_blocks:
            return _block_id(home[0])
        return layer.name

    def source(self, value: Value) -> str:
        if value.producer is None:
            return _input_id(value.name)
        return self.owner(value.producer.layer)

    def draw(self) -> graphviz.Digraph:
        g = self.graph
        dot = graphviz.Digraph(name=_safe_name(g.name))
        dot.attr(rankdir=self.rankdir, **style.GRAPH_ATTRS)
        dot.attr("node", **style.NODE_ATTRS)
        dot.attr("edge", **style.EDGE_ATTRS)

        with dot.subgraph() as s:
            s.attr(rank="source")
            for v in g.inputs:
                s.node(
                    _input_id(v.name),
                    label=labels.input_label(v),
                    tooltip=tip(f"input {v.name}: {v.type.dtype}{keras_shape(v.type.shape)}"),
                    **style.INPUT_STYLE,
                )
            _order(s, [_input_id(v.name) for v in g.inputs])

        self.draw_layers(dot)

        with dot.subgraph() as s:
            s.attr(rank="sink")
            for name, v in g.outputs.items():
                s.node(
                    _output_id(name),
                    label=f"<<B>{esc(name)}</B>>",
                    tooltip=tip(f"output {name}: {v.type.dtype}{keras_shape(v.type.shape)}"),
                    **style.OUTPUT_STYLE,
                )

        for tail, head, attrs in self.edges():
            dot.edge(tail, head, **attrs)

        head = labels.title_head(g, show_params=self.o.show_params)
        dot.attr(label=style.legend(head, self.families))
        return dot

    def draw_layers(self, dot: graphviz.Digraph) -> None:
        top: list[str] = []  # ids drawn at the top level, in order
        clusters: dict[str, _Cluster] = {}
        statements: dict[str, tuple[str, dict[str, str]]] = {}
        blocks: dict[str, list[Layer]] = {}
        for layer in self.layers:
            home = self.home[id(layer)]
            if home and not self.o.expand_blocks:
                if home[0] not in blocks:
                    blocks[home[0]] = []
                    top.append(_block_id(home[0]))
                blocks[home[0]].append(layer)
                continue
            statements[layer.name] = self.layer_node(layer)
            if not home:
                top.append(layer.name)
                continue
            level = clusters
            cluster = None
            for instance in home:
                cluster = level.setdefault(instance, _Cluster(instance))
                level = cluster.children
            cluster.nodes.append(layer.name)
            if _block_id(home[0]) not in top:
                top.append(_block_id(home[0]))  # placeholder: where the cluster goes

        for nid in top:
            if nid.startswith("block/"):
                instance = nid[len("block/") :]
                if self.o.expand_blocks:
                    self.draw_cluster(dot, clusters[instance], statements, depth=0)
                else:
                    dot.node(nid, **self.block_node(instance, blocks[instance]))
            else:
                label, attrs = statements[nid]
                dot.node(nid, label=label, **attrs)

    def draw_cluster(self, parent, cluster: _Cluster, statements, depth: int) -> None:
        with parent.subgraph(name=f"cluster_{cluster.instance}") as c:
            layers = self.block_layers(cluster.instance)
            c.attr(label=self.block_title(cluster.instance, layers), **style.cluster_style(depth))
            # nodes and nested clusters in the order of first use
            order = {name: i for i, name in enumerate(layer.name for layer in self.layers)}
            items: list[tuple[int, str, object]] = [(order[n], "node", n) for n in cluster.nodes]
            for child in cluster.children.values():
                first = min(order[layer.name] for layer in self.block_layers(child.instance))
                items.append((first, "cluster", child))
            for _, kind, item in sorted(items, key=lambda t: t[0]):
                if kind == "node":
                    label, attrs = statements[item]
                    c.node(item, label=label, **attrs)
                else:
                    self.draw_cluster(c, item, statements, depth + 1)

    def block_layers(self, instance: str) -> list[Layer]:
        """The distinct layers drawn inside a block instance (nested ones included)."""
        return [la for la in self.layers if instance in self.home[id(la)]]

    # ------------------------------------------------------------------ nodes

    def layer_node(self, layer: Layer) -> tuple[str, dict[str, str]]:
        family = style.family(layer)
        self.note_family(family)
        calls = len(self.calls[id(layer)])
        text = f"{layer.name}: {layer.describe_config()}"
        if family == "expression":
            attrs = dict(style.EXPRESSION_STYLE)
            attrs["tooltip"] = tip(text)
            return labels.expression_label(layer, calls), attrs

        label = labels.layer_label(
            layer,
            calls,
            show_activations=self.o.show_activations,
            show_params=self.o.show_params,
        )
        attrs = {"fillcolor": FAMILY_COLOURS[family], "tooltip": tip(text)}
        if calls > 1:
            attrs["penwidth"] = "1.6"
        return label, attrs

    def block_node(self, instance: str, layers: list[Layer]) -> dict[str, str]:
        self.note_family("block")
        names = ", ".join(la.name for la in layers[:12]) + (", …" if len(layers) > 12 else "")
        return {
            "label": self.block_title(instance, layers, node=True),
            "shape": "box3d",
            "style": "filled",
            "fillcolor": style.BLOCK_FILL,
            "tooltip": tip(f"{instance} ({self.block_types[instance]}): {names}"),
        }

    def block_title(self, instance: str, layers: list[Layer], node: bool = False) -> str:
        return labels.block_title(
            instance,
            self.block_types[instance],
            layers,
            show_params=self.o.show_params,
            node=node,
        )

    def note_family(self, family: str) -> None:
        if family not in self.families:
            self.families.append(family)

    # ------------------------------------------------------------------ edges

    def edges(self) -> list[tuple[str, str, dict[str, str]]]:
        out: list[tuple[str, str, dict[str, str]]] = []
        seen: set[tuple[str, str, int]] = set()

        def add(tail: str, head: str, value: Value, call: str, role: str = "") -> None:
            key = (tail, head, id(value))
            if key in seen:  # one value into several layers of one collapsed block
                return
            seen.add(key)
            text = self.edge_text(value)
            attrs: dict[str, str] = {}
            if value.producer is None:
                text = ""  # the input box already says its shape
            label = " ".join(t for t in (call, role, text) if t)
            if label:
                attrs["label"] = esc(label)
            out.append((tail, head, attrs))

        for node in self.graph.nodes:
            head = self.owner(node.layer)
            shared_in = _call_mark(node, self.calls)
            roles = extra_input_roles(node)  # initial_state, attention_mask...
            for i, v in enumerate(node.inputs):
                tail = self.source(v)
                if tail == head:
                    continue  # inside one collapsed block
                mark = shared_in or (_call_mark(v.producer, self.calls) if v.producer else "")
                add(tail, head, v, mark, roles.get(i, ""))
        for name, v in self.graph.outputs.items():
            mark = _call_mark(v.producer, self.calls) if v.producer else ""
            add(self.source(v), _output_id(name), v, mark)
        return out

    def edge_text(self, value: Value) -> str:
        if not self.o.show_shapes:
            return value.type.dtype if self.o.show_dtype else ""
        shape = keras_shape(value.type.shape)
        return f"{value.type.dtype} {shape}" if self.o.show_dtype else shape


# ---------------------------------------------------------------------------- helpers


def _input_id(name: str) -> str:
    return f"input/{name}"


def _output_id(name: str) -> str:
    return f"output/{name}"


def _block_id(instance: str) -> str:
    return f"block/{instance}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"


def _order(sub: graphviz.Digraph, ids: list[str]) -> None:
    """Keep nodes of one rank left to right in declaration order."""
    for a, b in itertools.pairwise(ids):
        sub.edge(a, b, style="invis")


def _common_prefix(scopes: list[tuple[str, ...]]) -> tuple[str, ...]:
    first = scopes[0]
    n = len(first)
    for s in scopes[1:]:
        n = min(n, len(s))
        for i in range(n):
            if s[i] != first[i]:
                n = i
                break
    return first[:n]


def _call_mark(node: Node | None, calls: dict[int, list[Node]]) -> str:
    """`#2` on edges into and out of the second call of a shared layer."""
    if node is None or len(calls[id(node.layer)]) < 2:
        return ""
    return f"#{calls[id(node.layer)].index(node) + 1}"
