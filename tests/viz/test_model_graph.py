"""`ktrans viz` on .kdl models: the DOT that model_graph builds, golden files, the files
render writes, and the command line.

Golden DOT files live in tests/golden/viz/; after an intended change to the diagrams,
rewrite them with `KTRANS_UPDATE_GOLDEN=1 python -m pytest tests/viz` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import pytest

from transpiler.cli import main
from transpiler.errors import KdlErrors, Span
from transpiler.graph import load
from transpiler.graph.model import Graph, Node, Value
from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.base import Layer
from transpiler.viz.model_graph import model_digraph
from transpiler.viz.render import render

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/viz"
GOLDEN = ROOT / "tests/golden/viz"
EXAMPLES = ROOT / "examples"
UPDATE = os.environ.get("KTRANS_UPDATE_GOLDEN") == "1"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")


def graph_of(path: Path, model: str | None = None) -> Graph:
    _, graphs = load(str(path))
    return graphs[model] if model else next(iter(graphs.values()))


def node_ids(dot: graphviz.Digraph) -> list[str]:
    """Ids of every node statement, unquoted, in order."""
    ids = []
    for line in dot.source.splitlines():
        m = re.match(r'^\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*) \[label=', line)
        if m:
            ids.append(m.group(1).strip('"'))
    return ids


def edges(dot: graphviz.Digraph) -> list[tuple[str, str, str]]:
    """(tail, head, attributes) of every visible edge, ids unquoted."""
    found = []
    for m in re.finditer(
        r'^\s*("[^"]*"|[\w.]+) -> ("[^"]*"|[\w.]+)(?: \[(.*)\])?$', dot.source, re.M
    ):
        attrs = m.group(3) or ""
        if "style=invis" not in attrs:
            found.append((m.group(1).strip('"'), m.group(2).strip('"'), attrs))
    return found


# ---------------------------------------------------------------------------- golden files


def _golden_cases() -> list[tuple[str, Path, str | None, dict]]:
    """(golden file name, .kdl path, model, options) for every fixture and every example
    that checks cleanly now, each of its models once with the defaults."""
    cases = []
    sources = [("fixture", p) for p in sorted(FIXTURES.glob("*.kdl"))]
    sources += [("example", p) for p in sorted(EXAMPLES.glob("*.kdl"))]
    for kind, path in sources:
        try:
            _, graphs = load(str(path))
        except KdlErrors:
            continue  # an example still being written: nothing to compare yet
        for model in graphs:
            cases.append((f"{kind}-{path.stem}.{model}.dot", path, model, {}))
    variants = [
        ("fixture-blocks.ToyResNet.expanded.dot", "blocks.kdl", {"expand_blocks": True}),
        (
            "fixture-multi_io.TicketRouter.all-options.dot",
            "multi_io.kdl",
            {
                "show_dtype": True,
                "show_params": True,
                "show_activations": True,
                "rankdir": "LR",
            },
        ),
        (
            "fixture-shared.Siamese.no-shapes.dot",
            "shared.kdl",
            {"show_shapes": False, "show_params": True},
        ),
    ]
    for name, fixture, options in variants:
        cases.append((name, FIXTURES / fixture, None, options))
    return cases


CASES = _golden_cases()


@pytest.mark.parametrize(("golden", "path", "model", "options"), CASES, ids=[c[0] for c in CASES])
def test_golden_dot(golden, path, model, options):
    source = model_digraph(graph_of(path, model), **options).source
    target = GOLDEN / golden
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
        return
    if not target.exists():
        pytest.fail(
            f"no golden file {target.relative_to(ROOT)}; create it with "
            "KTRANS_UPDATE_GOLDEN=1 python -m pytest tests/viz"
        )
    expected = target.read_text(encoding="utf-8")
    assert source == expected, (
        f"{path.name} draws differently from {target.relative_to(ROOT)}; if the change is "
        "intended, run KTRANS_UPDATE_GOLDEN=1 python -m pytest tests/viz and review the diff"
    )


def test_fixture_goldens_exist():
    """The fixtures always check, so their golden files must be in the repository."""
    names = {c[0] for c in CASES if c[0].startswith("fixture-")}
    assert len(names) >= 7
    if not UPDATE:
        missing = sorted(n for n in names if not (GOLDEN / n).exists())
        assert not missing, missing


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.kdl")))
def test_same_graph_same_dot(fixture):
    path = FIXTURES / fixture
    for options in ({}, {"expand_blocks": True, "show_params": True}):
        first = model_digraph(graph_of(path), **options).source
        again = model_digraph(graph_of(path), **options).source
        assert first == again


# ---------------------------------------------------------------------------- structure


def test_mlp_nodes_and_shapes():
    g = graph_of(FIXTURES / "mlp.kdl")
    dot = model_digraph(g)
    ids = node_ids(dot)
    assert ids == ["input/image", "dense", "dropout", "dense_1", "dropout_1", "dense_2",
                   "output/output"]  # fmt: skip
    labels = [attrs for _, _, attrs in edges(dot)]
    assert 'label="(None, 512)"' in labels[1]
    assert "Dense 512" in dot.source and "Dropout 0.2" in dot.source
    # the activation only with --show-activations, the params only with --show-params
    assert "<I>relu</I>" not in dot.source and "params" not in dot.source
    full = model_digraph(g, show_activations=True, show_params=True).source
    assert "<I>relu</I>" in full and "401,920 params" in full
    assert "535,818 params" in full  # the total, in the title


def test_no_shapes_and_dtype():
    g = graph_of(FIXTURES / "mlp.kdl")
    assert "(None, 512)" not in model_digraph(g, show_shapes=False).source.split("->", 1)[1]
    assert 'label="float32 (None, 512)"' in model_digraph(g, show_dtype=True).source


def test_inputs_and_outputs_stand_out():
    g = graph_of(FIXTURES / "multi_io.kdl")
    src = model_digraph(g).source
    assert "rank=source" in src and "rank=sink" in src
    for name in ("title", "body", "tags"):
        assert f'"input/{name}" [label=' in src
    assert "int32 (None, 12)" in src and "float32 (None, 8)" in src
    # inputs keep their declaration order, left to right
    assert '"input/title" -> "input/body" [style=invis]' in src
    assert '"input/body" -> "input/tags" [style=invis]' in src
    for name in ("priority", "department"):
        assert f'"output/{name}" [label=<<B>{name}</B>>' in src


def test_legend_lists_only_families_present():
    src = model_digraph(graph_of(FIXTURES / "mlp.kdl")).source
    title = src[src.index("label=<<FONT") :]
    assert ">dense</TD>" in title and ">regularization</TD>" in title
    assert ">conv</TD>" not in title and ">block</TD>" not in title


def test_shared_layer_drawn_once():
    g = graph_of(FIXTURES / "shared.kdl")
    assert sum(1 for n in g.nodes if n.layer.name == "dense") == 2  # two calls...
    dot = model_digraph(g)
    assert node_ids(dot).count("dense") == 1  # ...one box
    assert "shared ×2" in dot.source
    into = [(t, a) for t, h, a in edges(dot) if h == "dense"]
    out = [(h, a) for t, h, a in edges(dot) if t == "dense"]
    assert sorted(t for t, _ in into) == ["input/left", "input/right"]
    assert len(out) == 2 and all(h == "subtract" for h, _ in out)
    assert sorted(a for _, a in out) == ['label="#1 (None, 32)"', 'label="#2 (None, 32)"']


def test_expressions_are_small_ellipses():
    dot = model_digraph(graph_of(FIXTURES / "shared.kdl")).source
    assert re.search(r"subtract \[label=<−> [^\n]*shape=ellipse", dot)
    assert re.search(r"abs \[label=<abs> [^\n]*shape=ellipse", dot)


def test_blocks_collapsed_by_default():
    g = graph_of(FIXTURES / "blocks.kdl")
    dot = model_digraph(g)
    assert "cluster_" not in dot.source
    ids = node_ids(dot)
    # one node per outermost block instance: two repeats of Residual, and Stage
    assert [i for i in ids if i.startswith("block/")] == [
        "block/residual",
        "block/residual_1",
        "block/stage",
    ]
    assert "conv2d_1" not in ids and "relu" not in ids
    assert "<B>residual_1</B> · Residual" in dot.source
    assert "<B>stage</B> · Stage" in dot.source and "15 layers" in dot.source
    pairs = [(t, h) for t, h, _ in edges(dot)]
    assert ("conv2d", "block/residual") in pairs
    assert ("block/residual", "block/residual_1") in pairs
    assert ("block/stage", "global_average_pooling2d") in pairs
    assert len(pairs) == len(set(pairs))  # x into two layers of a block: one edge
    shown = model_digraph(g, show_params=True).source
    stage = sum(n.layer.param_count for n in g.nodes if n.scope[:1] == ("stage",))
    assert f"15 layers, {stage:,} params" in shown


def test_blocks_expanded_as_nested_clusters():
    g = graph_of(FIXTURES / "blocks.kdl")
    dot = model_digraph(g, expand_blocks=True)
    clusters = re.findall(r"subgraph (cluster_\w+) \{", dot.source)
    assert clusters == [f"cluster_{b}" for b in ("residual", "residual_1", "stage",
                                                 "residual_2", "residual_3")]  # fmt: skip
    assert len(clusters) == len(g.blocks)
    assert not any(i.startswith("block/") for i in node_ids(dot))
    assert set(node_ids(dot)) >= {n.layer.name for n in g.nodes}
    # residual_2 is inside stage: its cluster opens before stage's closes
    src = dot.source
    stage = src.index("subgraph cluster_stage")
    inner = src.index("subgraph cluster_residual_2")
    assert stage < inner < src.index("global_average_pooling2d [")


def test_toy_resnet_example_collapses_and_expands():
    path = EXAMPLES / "toy_resnet.kdl"
    if not path.exists():
        pytest.skip("examples/toy_resnet.kdl not written yet")
    try:
        g = graph_of(path)
    except KdlErrors:
        pytest.skip("examples/toy_resnet.kdl does not check yet")
    collapsed = model_digraph(g).source.count("subgraph cluster_")
    expanded = model_digraph(g, expand_blocks=True).source.count("subgraph cluster_")
    assert collapsed == 0 and expanded == len(g.blocks) > 0


def test_rankdir():
    g = graph_of(FIXTURES / "mlp.kdl")
    assert "rankdir=LR" in model_digraph(g, rankdir="LR").source
    with pytest.raises(ValueError):
        model_digraph(g, rankdir="XY")


class _Odd(Layer):
    """A layer whose name and description hold every character DOT and HTML care about."""

    family = "core"

    def describe_config(self) -> str:
        return "Odd(<b>&\"x\"\\n, 'q')"


def test_user_strings_are_escaped(tmp_path):
    name = 'we"ird <name> & \\ node'
    t = TensorType("float32", ("batch", 4))
    x = Value(t, "x<&>")
    layer = _Odd({}, name)
    layer.weights = []
    node = Node(layer, [x], [], Span("none.kdl", 1, 1))
    y = Value(t, name, node)
    node.outputs = [y]
    g = Graph("Odd", Span("none.kdl", 1, 1), "none.kdl", "channels_last", [x],
              {"y&<z>": y}, [node])  # fmt: skip
    dot = model_digraph(g, show_params=True, show_activations=True)
    # ids are quoted DOT strings; everything inside an HTML label is escaped
    assert "<B>we&quot;ird &lt;name&gt; &amp; \\ node</B>" in dot.source
    assert "&lt;b&gt;&amp;&quot;x&quot;" in dot.source and "x&lt;&amp;&gt;" in dot.source
    assert '"we\\"ird <name> & \\ node" [label=' in dot.source
    if shutil.which("dot"):
        out = render(dot, tmp_path / "odd.svg")
        text = "".join(ET.parse(out).getroot().itertext())
        assert name in text and "x<&>" in text and "y&<z>" in text


# ---------------------------------------------------------------------------- rendering


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # raises on invalid XML
    return "\n".join(root.itertext())


@needs_dot
@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.kdl")))
def test_svg_has_every_layer_and_shape(fixture, tmp_path):
    g = graph_of(FIXTURES / fixture)
    out = render(model_digraph(g, expand_blocks=True), tmp_path / "m.svg")
    text = svg_text(out)
    consumed = {id(v) for n in g.nodes for v in n.inputs} | {id(v) for v in g.outputs.values()}
    for node in g.nodes:
        assert node.layer.name in text
        for v in node.outputs:
            if id(v) in consumed:
                assert format_shape(v.type.shape) in text
    for v in g.inputs:
        assert v.name in text
    for name in g.outputs:
        assert name in text


@needs_dot
def test_png_and_pdf(tmp_path):
    dot = model_digraph(graph_of(FIXTURES / "multi_io.kdl"))
    png = render(dot, tmp_path / "m.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pdf = render(dot, tmp_path / "m.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")


@needs_dot
def test_largest_example_renders_fast(tmp_path):
    """resnet50 (~180 layers), blocks expanded: the heaviest diagram a user asks for."""
    path = EXAMPLES / "resnet50.kdl"
    if not path.exists():
        pytest.skip("examples/resnet50.kdl not written yet")
    try:
        g = graph_of(path)
    except KdlErrors:
        pytest.skip("examples/resnet50.kdl does not check yet")
    start = time.perf_counter()
    dot = model_digraph(g, expand_blocks=True, show_params=True, show_activations=True)
    out = render(dot, tmp_path / "r.svg")
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"{elapsed:.1f}s"
    text = svg_text(out)
    assert all(n.layer.name in text for n in g.nodes)


# ---------------------------------------------------------------------------- the command


def viz(*args) -> int:
    return main(["viz", *map(str, args)])


@needs_dot
def test_cli_svg(tmp_path, capsys):
    out = tmp_path / "m.svg"
    assert viz(FIXTURES / "mlp.kdl", "-o", out) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (svg, 7 nodes)"
    assert "dense_1" in svg_text(out)


def test_cli_dot_and_options(tmp_path, capsys):
    out = tmp_path / "m.dot"
    args = ["--show-params", "--show-dtype", "--show-activations", "--rankdir", "lr"]
    assert viz(FIXTURES / "blocks.kdl", "-o", out, "--expand-blocks", *args) == 0
    assert "(dot, " in capsys.readouterr().out
    src = out.read_text()
    assert "rankdir=LR" in src and "52,458 params" in src and "cluster_stage" in src
    assert "float32 (None, 32, 32, 16)" in src and "<I>relu</I>" in src
    assert viz(FIXTURES / "blocks.kdl", "-o", out, "--no-shapes") == 0
    assert "(None, 32, 32, 16)" not in out.read_text().split("->", 1)[1]


def test_cli_show_params_total(tmp_path):
    out = tmp_path / "m.dot"
    assert viz(FIXTURES / "multi_io.kdl", "-o", out, "--show-params") == 0
    assert "173,965 params" in out.read_text()


def test_cli_picks_model(tmp_path, capsys):
    two = tmp_path / "two.kdl"
    two.write_text((FIXTURES / "mlp.kdl").read_text() + (FIXTURES / "shared.kdl").read_text())
    out = tmp_path / "m.dot"
    assert viz(two, "-o", out) == 1
    err = capsys.readouterr().err
    assert "2 models: MnistMLP, Siamese" in err and "--model MnistMLP" in err
    assert not out.exists()
    assert viz(two, "-o", out, "--model", "Siamese") == 0
    assert "digraph Siamese" in out.read_text()
    assert viz(two, "-o", tmp_path / "x.dot", "--model", "Siamse") == 1
    assert "did you mean 'Siamese'?" in capsys.readouterr().err
    assert not (tmp_path / "x.dot").exists()


def test_cli_bad_kdl_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.kdl"
    bad.write_text("model M {\n    input x: float32[8]\n    Dense(0)\n}\n")
    out = tmp_path / "m.svg"
    assert viz(bad, "-o", out) == 1
    assert "units" in capsys.readouterr().err
    assert viz(tmp_path / "missing.kdl", "-o", out) == 1
    assert list(tmp_path.iterdir()) == [bad]


def test_cli_unknown_format(tmp_path, capsys):
    out = tmp_path / "m.jpg"
    assert viz(FIXTURES / "mlp.kdl", "-o", out) == 1
    assert "unknown diagram format" in capsys.readouterr().err
    assert not out.exists()


def test_cli_unwritable_path(tmp_path, capsys):
    assert viz(FIXTURES / "mlp.kdl", "-o", tmp_path / "no/such/dir/m.svg") == 1
    assert "does not exist" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert viz(FIXTURES / "mlp.kdl", "-o", a_file / "m.dot") == 1
    assert "cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [a_file]


def test_cli_missing_dot(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "m.svg"
    assert viz(FIXTURES / "mlp.kdl", "-o", out) == 1
    err = capsys.readouterr().err
    assert "'dot' program was not found" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # a .dot file needs no Graphviz
    assert viz(FIXTURES / "mlp.kdl", "-o", tmp_path / "m.dot") == 0


def test_cli_level_onnx(tmp_path, capsys):
    out = tmp_path / "m.dot"
    assert viz(FIXTURES / "mlp.kdl", "-o", out, "--level", "onnx", "--rankdir", "LR") == 0
    src = out.read_text()
    assert "rankdir=LR" in src and "MnistMLP" in src
    assert "Gemm" in src or "MatMul" in src


def test_cli_onnx_file(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    out = tmp_path / "m.dot"
    # model-level flags are ignored for an ONNX file; --rankdir applies
    assert viz(path, "-o", out, "--rankdir", "LR", "--show-params", "--expand-blocks") == 0
    assert "rankdir=LR" in out.read_text()
    assert "(dot, 3 nodes)" in capsys.readouterr().out
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert viz(junk, "-o", tmp_path / "j.dot") == 1
    assert not (tmp_path / "j.dot").exists()


def test_registering_viz_does_not_import_graphviz():
    """`ktrans check` builds the whole parser: registering viz must stay cheap."""
    import subprocess
    import sys

    code = (
        "import argparse, sys; import transpiler.cli_viz as v; "
        "v.register(argparse.ArgumentParser().add_subparsers()); "
        "print(any(m.startswith(('graphviz', 'onnx')) for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
