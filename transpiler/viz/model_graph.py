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
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass, field

import graphviz

from transpiler.graph.model import Graph, Node, Value
from transpiler.graph.types import format_shape
from transpiler.layers.base import Layer, snake_case

RANKDIRS = ("TB", "LR", "BT", "RL")

_FONT = "Helvetica"
_TEXT_LIMIT = 40  # longest config line before it is shortened

# Set3 from ColorBrewer: pastel, distinct, and black text stays readable on all of them
FAMILY_COLOURS: dict[str, str] = {
    "conv": "#80b1d3",
    "pooling": "#b3de69",
    "dense": "#bebada",
    "recurrent": "#8dd3c7",
    "attention": "#fccde5",
    "embedding": "#bc80bd",
    "normalization": "#fdb462",
    "activation": "#fb8072",
    "merge": "#ffed6f",
    "reshape": "#d9d9d9",
    "regularization": "#ccebc5",
    "core": "#ffffb3",
    "expression": "#ffffff",
}
_BLOCK_FILL = "#eef0fa"
_INPUT_FILL = "#1f4e79"
_OUTPUT_FILL = "#2e6b30"
_CLUSTER_FILLS = ("#f6f7fb", "#eceef6")  # alternating with the nesting depth

# what an expression node shows instead of its op's name
_OP_SYMBOLS = {
    "add": "+",
    "subtract": "−",
    "multiply": "×",
    "divide": "÷",
    "pow": "**",
    "matmul": "@",
}
_FLAG_WORDS = {"return_sequences": "seq", "return_state": "+state", "go_backwards": "reverse"}


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
        dot.attr(
            rankdir=self.rankdir,
            fontname=_FONT,
            nodesep="0.25",
            ranksep="0.3",
            newrank="true",
            labelloc="t",
        )
        dot.attr(
            "node",
            shape="box",
            style="rounded,filled",
            fillcolor="#ffffff",
            fontname=_FONT,
            fontsize="10",
            margin="0.1,0.04",
            height="0.3",
            penwidth="0.8",
        )
        dot.attr(
            "edge",
            fontname=_FONT,
            fontsize="8",
            color="#555555",
            fontcolor="#333333",
            arrowsize="0.6",
            penwidth="0.8",
        )

        with dot.subgraph() as s:
            s.attr(rank="source")
            for v in g.inputs:
                s.node(
                    _input_id(v.name),
                    label=self.input_label(v),
                    tooltip=_tip(f"input {v.name}: {v.type}"),
                    **_INPUT_STYLE,
                )
            _order(s, [_input_id(v.name) for v in g.inputs])

        self.draw_layers(dot)

        with dot.subgraph() as s:
            s.attr(rank="sink")
            for name, v in g.outputs.items():
                s.node(
                    _output_id(name),
                    label=f"<<B>{_esc(name)}</B>>",
                    tooltip=_tip(f"output {name}: {v.type}"),
                    **_OUTPUT_STYLE,
                )

        for tail, head, attrs in self.edges():
            dot.edge(tail, head, **attrs)

        dot.attr(label=self.title())
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
            c.attr(
                label=self.block_title(cluster.instance, layers),
                style="rounded,filled",
                fillcolor=_CLUSTER_FILLS[depth % 2],
                color="#8a8fb0",
                penwidth="0.8",
                fontsize="10",
                labeljust="l",
                margin="8",
            )
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
        family = layer.family if layer.family in FAMILY_COLOURS else "core"
        self.note_family(family)
        calls = len(self.calls[id(layer)])
        tip = f"{layer.name}: {layer.describe_config()}"
        if family == "expression":
            attrs = dict(_EXPRESSION_STYLE)
            attrs["tooltip"] = _tip(tip)
            lines = [_esc(_expression_text(layer))]
            if calls > 1:
                lines.append(f'<FONT POINT-SIZE="7">shared ×{calls}</FONT>')
            return _rows(lines), attrs

        lines = [f"<B>{_esc(layer.name)}</B>"]
        if calls > 1:
            lines[0] += f' <FONT POINT-SIZE="8" COLOR="#a01010">shared ×{calls}</FONT>'
        lines.append(_esc(_config_text(layer)))
        if self.o.show_activations:
            act = _activation(layer)
            if act:
                lines.append(f"<I>{_esc(act)}</I>")
        if self.o.show_params and layer.param_count:
            lines.append(f'<FONT POINT-SIZE="8">{_params(layer.param_count)}</FONT>')
        attrs = {"fillcolor": FAMILY_COLOURS[family], "tooltip": _tip(tip)}
        if calls > 1:
            attrs["penwidth"] = "1.6"
        return _rows(lines), attrs

    def block_node(self, instance: str, layers: list[Layer]) -> dict[str, str]:
        self.note_family("block")
        names = ", ".join(la.name for la in layers[:12]) + (", …" if len(layers) > 12 else "")
        return {
            "label": self.block_title(instance, layers, node=True),
            "shape": "box3d",
            "style": "filled",
            "fillcolor": _BLOCK_FILL,
            "tooltip": _tip(f"{instance} ({self.block_type(instance)}): {names}"),
        }

    def block_title(self, instance: str, layers: list[Layer], node: bool = False) -> str:
        head = f"<B>{_esc(instance)}</B> · {_esc(self.block_type(instance))}"
        if not node:
            if self.o.show_params:
                head += f' <FONT POINT-SIZE="8">({_params(_sum_params(layers))})</FONT>'
            return f"<{head}>"
        detail = f"{len(layers)} layer{'s' if len(layers) != 1 else ''}"
        if self.o.show_params:
            detail += f", {_params(_sum_params(layers))}"
        return _rows([head, f'<FONT POINT-SIZE="8">{detail}</FONT>'])

    def block_type(self, instance: str) -> str:
        return self.block_types[instance]

    def input_label(self, v: Value) -> str:
        detail = f"{v.type.dtype} {format_shape(v.type.shape)}"
        return _rows([f"<B>{_esc(v.name)}</B>", f'<FONT POINT-SIZE="9">{_esc(detail)}</FONT>'])

    def note_family(self, family: str) -> None:
        if family not in self.families:
            self.families.append(family)

    def title(self) -> str:
        g = self.graph
        head = f'<FONT POINT-SIZE="14"><B>{_esc(g.name)}</B></FONT>'
        if self.o.show_params:
            detail = f"{g.param_count:,} params"
            if g.non_trainable_count:
                detail += f" ({g.non_trainable_count:,} non-trainable)"
            head += f'<FONT POINT-SIZE="11">  ·  {detail}</FONT>'
        order = [*FAMILY_COLOURS, "block"]
        families = sorted(self.families, key=order.index)
        chips = []
        for family in families:
            fill = _BLOCK_FILL if family == "block" else FAMILY_COLOURS[family]
            style = ' STYLE="rounded"' if family == "expression" else ""
            chips.append(f'<TD BGCOLOR="{fill}" BORDER="1" COLOR="#666666"{style}>{family}</TD>')
        rows = [chips[i : i + 7] for i in range(0, len(chips), 7)] or [[]]
        width = max(len(r) for r in rows) or 1
        table = [
            '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2">',
            f'<TR><TD COLSPAN="{width}">{head}</TD></TR>',
        ]
        for row in rows:
            if row:
                table.append("<TR>" + "".join(row) + "</TR>")
        table.append("</TABLE>")
        return '<<FONT POINT-SIZE="9">' + "".join(table) + "</FONT>>"

    # ------------------------------------------------------------------ edges

    def edges(self) -> list[tuple[str, str, dict[str, str]]]:
        out: list[tuple[str, str, dict[str, str]]] = []
        seen: set[tuple[str, str, int]] = set()

        def add(tail: str, head: str, value: Value, call: str) -> None:
            key = (tail, head, id(value))
            if key in seen:  # one value into several layers of one collapsed block
                return
            seen.add(key)
            text = self.edge_text(value)
            attrs: dict[str, str] = {}
            if value.producer is None:
                text = ""  # the input box already says its shape
            label = " ".join(t for t in (call, text) if t)
            if label:
                attrs["label"] = _esc(label)
            out.append((tail, head, attrs))

        for node in self.graph.nodes:
            head = self.owner(node.layer)
            shared_in = _call_mark(node, self.calls)
            for v in node.inputs:
                tail = self.source(v)
                if tail == head:
                    continue  # inside one collapsed block
                mark = shared_in or (_call_mark(v.producer, self.calls) if v.producer else "")
                add(tail, head, v, mark)
        for name, v in self.graph.outputs.items():
            mark = _call_mark(v.producer, self.calls) if v.producer else ""
            add(self.source(v), _output_id(name), v, mark)
        return out

    def edge_text(self, value: Value) -> str:
        if not self.o.show_shapes:
            return value.type.dtype if self.o.show_dtype else ""
        shape = format_shape(value.type.shape)
        return f"{value.type.dtype} {shape}" if self.o.show_dtype else shape


_INPUT_STYLE = {
    "shape": "box",
    "style": "filled",
    "fillcolor": _INPUT_FILL,
    "fontcolor": "#ffffff",
    "color": "#0d2740",
    "penwidth": "1.2",
    "margin": "0.14,0.06",
}
_OUTPUT_STYLE = {
    "shape": "box",
    "style": "rounded,filled,bold",
    "fillcolor": _OUTPUT_FILL,
    "fontcolor": "#ffffff",
    "color": "#163a17",
    "penwidth": "1.2",
    "margin": "0.16,0.06",
}
_EXPRESSION_STYLE = {
    "shape": "ellipse",
    "style": "solid",
    "fontsize": "9",
    "margin": "0.04,0.02",
    "height": "0.22",
    "width": "0.3",
    "color": "#777777",
}


# ---------------------------------------------------------------------------- helpers


def _rows(lines: list[str]) -> str:
    """An HTML label of one or more lines. A table, not <BR/>: with <BR/> the lines sit
    so close that the underscores of a bold name touch the line below."""
    if len(lines) == 1:
        return f"<{lines[0]}>"
    body = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>>'


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


def _esc(text: str) -> str:
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
    return html.escape(text, quote=True)


def _tip(text: str) -> str:
    """A plain (non-HTML) attribute value: printable, with backslashes made literal."""
    text = "".join(c if c.isprintable() else " " for c in text[:300])
    return graphviz.escape(text)


def _shorten(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _params(n: int) -> str:
    return f"{n:,} param{'s' if n != 1 else ''}"


def _sum_params(layers: list[Layer]) -> int:
    return sum(la.param_count for la in layers)


def _split_args(text: str) -> list[str]:
    """Split `a, [b, c], d(e, f)` at the top-level commas."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    if last:
        parts.append(last)
    return parts


_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$", re.S)
_GRID = re.compile(r"^\d+(?:x\d+)+$")
_NUMBERS = re.compile(r"^\[?\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\]?$")


def _compact(description: str, drop: str | None = None) -> str:
    """`Conv2D(64, 3x3, strides=[2, 2], same, relu)` -> `Conv2D 64 3×3 /2 same relu`
    (without `drop`, the activation shown on a line of its own or not at all)."""
    m = _CALL.match(description.strip())
    if not m:
        return description
    words = [m.group(1)]
    for part in _split_args(m.group(2)):
        if drop is not None and part == drop:
            continue
        if _GRID.match(part):
            part = part.replace("x", "×")
        elif part.startswith("strides=") or part.startswith("stride="):
            nums = _NUMBERS.match(part.split("=", 1)[1])
            if nums:
                values = [int(v) for v in re.split(r"\s*,\s*", nums.group(1))]
                part = "/" + (
                    str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))
                )
        elif len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            part = part[1:-1]  # describe() quotes strings: Activation('relu')
        elif part in _FLAG_WORDS:
            part = _FLAG_WORDS[part]
        elif _CALL.match(part):
            part = _compact(part, drop)
        words.append(part)
    return " ".join(words)


def _activation(layer: Layer) -> str | None:
    value = layer.config.get("activation")
    if value is None or layer.family == "activation":
        return None
    name = value if isinstance(value, str) else getattr(value, "name", None) or str(value)
    return None if name == "linear" else name


def _config_text(layer: Layer) -> str:
    """The Keras class and its key settings, e.g. `Conv2D 64 3×3 /2 same`."""
    try:
        description = layer.describe_config()
    except Exception:  # a half-written layer must not stop the diagram
        description = layer.keras_class()
    drop = _activation(layer) if layer.family != "activation" else None
    text = _compact(description, drop)
    if not text.startswith(layer.keras_class()):
        text = f"{layer.keras_class()} {text}"
    return _shorten(text)


def _expression_text(layer: Layer) -> str:
    """What an expression node shows: `+`, `relu`, `mean`, `[:, 2:5]`, `− 0.5`..."""
    cfg = layer.config
    if "op" in cfg:
        op = cfg["op"]
        symbol = _OP_SYMBOLS.get(op, op)
        # the evaluator sets scalar_left on the layer after creating it (`1 - x`)
        scalar = getattr(layer, "scalar", None)
        if scalar is not None:
            value = f"{scalar:g}" if isinstance(scalar, float) else str(scalar)
            left = getattr(layer, "scalar_left", False)
            return f"{value} {symbol}" if left else f"{symbol} {value}"
        return symbol
    if "items" in cfg:
        return _index_text(cfg["items"])
    if "fn" in cfg:
        return str(cfg["fn"])
    kind = type(layer).__name__
    if kind == "MatMul":
        return "@"
    if kind == "ReshapeTo":
        return "flatten" if tuple(cfg.get("target", ())) == (-1,) else "reshape"
    if kind == "Clip":
        return f"clip {cfg.get('lo')}..{cfg.get('hi')}"
    try:
        text = layer.describe_config()
    except Exception:
        text = ""
    if text and "(" not in text:
        return _shorten(text, 24)
    return snake_case(kind)


def _index_text(items) -> str:
    parts = [":"]
    for item in items:
        if item[0] == "index":
            parts.append(str(item[1]))
            continue
        _, start, stop, step = item
        s = f"{'' if start is None else start}:{'' if stop is None else stop}"
        if step not in (None, 1):
            s += f":{step}"
        parts.append(s)
    return _shorten("[" + ", ".join(parts) + "]", 24)
