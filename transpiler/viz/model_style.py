"""How a model diagram looks: the colour of each layer family, the styles of the graph,
its input, output, expression and block boxes and clusters, and the family legend.
"""

from __future__ import annotations

from transpiler.layers.base import Layer
from transpiler.viz.dot_text import FONT

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
    "preprocessing": "#e5d8bd",  # Pastel1: Set3 has no thirteenth colour
    "expression": "#ffffff",
}
BLOCK_FILL = "#eef0fa"
_INPUT_FILL = "#1f4e79"
_OUTPUT_FILL = "#2e6b30"
_CLUSTER_FILLS = ("#f6f7fb", "#eceef6")  # alternating with the nesting depth

# defaults for the whole graph (after its rankdir), every node and every edge
GRAPH_ATTRS = {
    "fontname": FONT,
    "nodesep": "0.25",
    "ranksep": "0.3",
    "newrank": "true",
    "labelloc": "t",
}
NODE_ATTRS = {
    "shape": "box",
    "style": "rounded,filled",
    "fillcolor": "#ffffff",
    "fontname": FONT,
    "fontsize": "10",
    "margin": "0.1,0.04",
    "height": "0.3",
    "penwidth": "0.8",
}
EDGE_ATTRS = {
    "fontname": FONT,
    "fontsize": "8",
    "color": "#555555",
    "fontcolor": "#333333",
    "arrowsize": "0.6",
    "penwidth": "0.8",
}

INPUT_STYLE = {
    "shape": "box",
    "style": "filled",
    "fillcolor": _INPUT_FILL,
    "fontcolor": "#ffffff",
    "color": "#0d2740",
    "penwidth": "1.2",
    "margin": "0.14,0.06",
}
OUTPUT_STYLE = {
    "shape": "box",
    "style": "rounded,filled,bold",
    "fillcolor": _OUTPUT_FILL,
    "fontcolor": "#ffffff",
    "color": "#163a17",
    "penwidth": "1.2",
    "margin": "0.16,0.06",
}
EXPRESSION_STYLE = {
    "shape": "ellipse",
    "style": "solid",
    "fontsize": "9",
    "margin": "0.04,0.02",
    "height": "0.22",
    "width": "0.3",
    "color": "#777777",
}


def family(layer: Layer) -> str:
    """The family `layer` is coloured as; families without a colour count as core."""
    return layer.family if layer.family in FAMILY_COLOURS else "core"


def cluster_style(depth: int) -> dict[str, str]:
    """The attributes of an expanded block instance nested `depth` blocks deep (after its
    label)."""
    return {
        "style": "rounded,filled",
        "fillcolor": _CLUSTER_FILLS[depth % 2],
        "color": "#8a8fb0",
        "penwidth": "0.8",
        "fontsize": "10",
        "labeljust": "l",
        "margin": "8",
    }


def legend(head: str, families: list[str]) -> str:
    """The graph label: `head` (HTML) above one colour chip per family that appears, in
    the order of FAMILY_COLOURS, with collapsed blocks last."""
    order = [*FAMILY_COLOURS, "block"]
    chips = []
    for name in sorted(families, key=order.index):
        fill = BLOCK_FILL if name == "block" else FAMILY_COLOURS[name]
        style = ' STYLE="rounded"' if name == "expression" else ""
        chips.append(f'<TD BGCOLOR="{fill}" BORDER="1" COLOR="#666666"{style}>{name}</TD>')
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
