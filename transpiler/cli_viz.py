"""`ktrans viz`: draw a .kdl model or an .onnx file as an .svg, .png, .pdf or .dot file.

Registered by `transpiler.cli._register_optional_commands`. graphviz and onnx are
imported inside the command, so other commands start without them.
"""

from __future__ import annotations

import re
from pathlib import Path

from transpiler.errors import KdlError, KdlErrors, printable

EXIT_OK = 0
RANKDIRS = ("TB", "LR", "BT", "RL")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "viz",
        help="draw a model (.kdl) or an ONNX file as a diagram (.svg, .png, .pdf, .dot)",
        description="Draw a .kdl model (one box per layer, shapes on the edges) or an .onnx "
        "file (one box per op) with Graphviz. The output format follows the suffix of -o.",
    )
    p.add_argument("file", metavar="FILE", help="a .kdl file, or an .onnx file")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="the diagram to write: OUT.svg, OUT.png, OUT.pdf, or OUT.dot (Graphviz source)",
    )
    p.add_argument("--model", metavar="NAME", help="which model of the file (needed if several)")
    p.add_argument(
        "--no-shapes",
        dest="show_shapes",
        action="store_false",
        help="do not label the edges with tensor shapes",
    )
    p.add_argument("--show-dtype", action="store_true", help="add the dtype to edge labels")
    p.add_argument(
        "--show-params",
        action="store_true",
        help="parameter count per layer, and the total in the title",
    )
    p.add_argument(
        "--show-activations",
        action="store_true",
        help="the activation of each layer that has one",
    )
    p.add_argument(
        "--rankdir",
        choices=RANKDIRS,
        default="TB",
        type=str.upper,
        help="direction of the flow: TB (top to bottom, default), LR, BT or RL",
    )
    p.add_argument(
        "--expand-blocks",
        action="store_true",
        help="draw each block instance as a box around its layers (default: one node)",
    )
    p.add_argument(
        "--level",
        choices=("layers", "onnx"),
        default="layers",
        help="for .kdl files: draw the layers (default) or the ONNX graph ktrans builds",
    )
    p.set_defaults(run=cmd_viz)


def cmd_viz(args) -> int:
    from transpiler.viz.render import FORMATS as RENDER_FORMATS
    from transpiler.viz.render import render

    out = Path(args.output)
    if out.suffix.lower() not in RENDER_FORMATS:  # before any work: fail fast
        shown = f"'{out.suffix}'" if out.suffix else "no suffix"
        raise KdlErrors(
            [
                KdlError(
                    None,
                    f"cannot write '{out}': unknown diagram format ({shown})",
                    f"use one of: {', '.join(RENDER_FORMATS)}",
                )
            ]
        )

    if Path(args.file).suffix.lower() == ".onnx":
        from transpiler.viz.onnx_graph import load_onnx, onnx_digraph

        dot = onnx_digraph(load_onnx(args.file), rankdir=args.rankdir)
    else:
        from transpiler.graph import load_one

        _, graph = load_one(args.file, args.model)
        if args.level == "onnx":
            dot = _onnx_level(graph, args.file, args.rankdir)
        else:
            from transpiler.viz.model_graph import model_digraph

            dot = model_digraph(
                graph,
                show_shapes=args.show_shapes,
                show_dtype=args.show_dtype,
                show_params=args.show_params,
                show_activations=args.show_activations,
                rankdir=args.rankdir,
                expand_blocks=args.expand_blocks,
            )

    written = render(dot, out)
    fmt = RENDER_FORMATS.get(written.suffix.lower()) or "dot"
    n = count_nodes(dot.source)
    print(f"wrote {printable(str(written))} ({fmt}, {n} node{'s' if n != 1 else ''})")
    return EXIT_OK


def _onnx_level(graph, path: str, rankdir: str):
    """The ONNX graph `ktrans build` writes (with initial weights, which a diagram only
    shows the shapes of)."""
    from transpiler.emit.onnx import build_model
    from transpiler.viz.onnx_graph import onnx_digraph

    return onnx_digraph(build_model(graph, source=path), rankdir=rankdir, title=graph.name)


_NODE_STATEMENT = re.compile(r'^\s*(?:"(?:[^"\\]|\\.)*"|[^\s\[\]{}="-]+)(?: \[.*\])?$')


def count_nodes(source: str) -> int:
    """How many node statements a DOT source holds (each node is declared once)."""
    n = 0
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped or stripped in ("{", "}") or "=" in stripped.split("[", 1)[0]:
            continue
        head = stripped.split(" ", 1)[0]
        if head in ("graph", "node", "edge", "subgraph", "digraph", "strict", "}"):
            continue
        if _NODE_STATEMENT.match(stripped):
            n += 1
    return n
