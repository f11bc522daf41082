"""`ktrans viz` on ONNX files: the diagram built by onnx_graph and the files render writes."""

from __future__ import annotations

import io
import re
import time
import warnings
import xml.etree.ElementTree as ET

import graphviz
import onnx
import pytest
from onnx import TensorProto, helper

from transpiler.errors import KdlErrors
from transpiler.viz.onnx_graph import category, load_onnx, onnx_digraph
from transpiler.viz.render import render

NODE_LINE = re.compile(r"^\s*(\w+) \[label=<(.*)>", re.M)


def node_labels(dot: graphviz.Digraph) -> dict[str, str]:
    """Node id -> its HTML label, for every node statement in the DOT source."""
    return {m.group(1): m.group(2) for m in NODE_LINE.finditer(dot.source)}


def edges(dot: graphviz.Digraph) -> list[tuple[str, str, str]]:
    """(tail, head, attribute text) for every edge statement."""
    return re.findall(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$", dot.source, re.M)


def value(name: str, elem: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def weight(name: str, dims: list[int]) -> TensorProto:
    count = 1
    for d in dims:
        count *= d
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.5] * count)


# ---------------------------------------------------------------------------- models


@pytest.fixture
def cnn() -> onnx.ModelProto:
    """Conv(3->8, 3x3, stride 2) -> Relu -> Flatten -> Gemm(10), weights as initializers."""
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "conv.w", "conv.b"],
            ["c"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [value("x", TensorProto.FLOAT, [1, 3, 28, 28])],
        [value("y", TensorProto.FLOAT, [1, 10])],
        initializer=[
            weight("conv.w", [8, 3, 3, 3]),
            weight("conv.b", [8]),
            weight("fc.w", [10, 8 * 14 * 14]),
            weight("fc.b", [10]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def control_flow() -> onnx.ModelProto:
    """If (both branches read the outer `x`) feeding a Loop whose body also reads `x`."""
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])], "then", [], [value("t", TensorProto.FLOAT, None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [value("e", TensorProto.FLOAT, None)]
    )
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "body",
        [
            value("i", TensorProto.INT64, []),
            value("c_in", TensorProto.BOOL, []),
            value("acc_in", TensorProto.FLOAT, [2, 3]),
        ],
        [value("c_out", TensorProto.BOOL, []), value("acc_out", TensorProto.FLOAT, [2, 3])],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["r"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["n", "", "r"], ["y"], body=body),
    ]
    graph = helper.make_graph(
        nodes,
        "control",
        [value("x", TensorProto.FLOAT, [2, 3]), value("cond", TensorProto.BOOL, [])],
        [value("y", TensorProto.FLOAT, [2, 3])],
        initializer=[helper.make_tensor("n", TensorProto.INT64, [], [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _export(module, example) -> onnx.ModelProto:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is in the dev environment
        pytest.skip(f"torch not importable: {e}")
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's
            torch.onnx.export(
                module.eval(),
                (example,),
                buf,
                dynamo=False,
                opset_version=17,
                input_names=["image"],
                output_names=["logits"],
            )
    except ImportError as e:  # pragma: no cover - an exporter dependency is missing
        pytest.skip(f"torch.onnx.export needs a missing package: {e}")
    return onnx.load_from_string(buf.getvalue())


@pytest.fixture(scope="module")
def torch_cnn() -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    return _export(net, torch.randn(1, 1, 28, 28))


@pytest.fixture(scope="module")
def torch_resnet() -> onnx.ModelProto:
    """A ResNet-50-shaped net (3-4-6-3 bottlenecks, 53 convs) with tiny widths and input."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.skip: nn.Module = nn.Identity()
            if stride != 1 or cin != cout:
                self.skip = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            return torch.relu(self.body(x) + self.skip(x))

    layers: list[nn.Module] = [
        nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    cin = 8
    for i, (blocks, width) in enumerate([(3, 2), (4, 4), (6, 8), (3, 16)]):
        for b in range(blocks):
            layers.append(Bottleneck(cin, width, 2 if b == 0 and i > 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return _export(nn.Sequential(*layers), torch.randn(1, 3, 32, 32))


# ---------------------------------------------------------------------------- the diagram


def test_every_op_is_a_coloured_box_with_its_attributes(cnn):
    labels = node_labels(onnx_digraph(cnn))
    ops = [lab for nid, lab in labels.items() if nid.startswith("n")]
    assert [re.match(r"<B>(\w+)</B>", lab).group(1) for lab in ops] == [
        "Conv",
        "Relu",
        "Flatten",
        "Gemm",
    ]
    conv = labels["n0"]
    assert "kernel 3×3" in conv and "strides 2×2" in conv and "pads 1×1" in conv
    assert "dilations" not in conv and "group" not in conv  # defaults stay out of the way
    assert "transB" in labels["n3"]
    assert labels["n2"] == "<B>Flatten</B>"  # axis=1 is the default, so not shown
    source = onnx_digraph(cnn).source
    assert re.search(r'n0 \[.*fillcolor="#a9c7ef"', source)  # conv colour
    assert category("Conv") == "conv" and category("Relu") == "activation"
    assert category("ReduceMean") == "math" and category("MyCustomOp") == "other"


def test_initializers_are_summarised_inside_their_node_not_drawn(cnn):
    dot = onnx_digraph(cnn)
    labels = node_labels(dot)
    assert "conv.w ⟨8×3×3×3⟩" in labels["n0"] and "conv.b ⟨8⟩" in labels["n0"]
    assert "fc.w ⟨10×1568⟩" in labels["n3"] and "fc.b ⟨10⟩" in labels["n3"]
    # only ops, the graph input and the graph output are nodes
    assert sorted(labels) == ["in0", "n0", "n1", "n2", "n3", "out0"]
    assert not any(tail == "conv.w" or "conv.w" in attrs for tail, _, attrs in edges(dot))


def test_edges_carry_inferred_shapes(cnn):
    found = {(t, h): attrs for t, h, attrs in edges(onnx_digraph(cnn))}
    assert "label=<1×3×28×28>" in found[("in0", "n0")]
    assert "label=<1×8×14×14>" in found[("n0", "n1")]
    assert "label=<1×1568>" in found[("n2", "n3")]
    assert "label=<1×10>" in found[("n3", "out0")]


def test_inputs_and_outputs_are_ellipses_with_dtype_and_shape(cnn):
    source = onnx_digraph(cnn).source
    assert re.search(r"in0 \[label=<<B>x</B>.*float32 ⟨1×3×28×28⟩.*shape=ellipse", source)
    assert re.search(
        r"out0 \[label=<<B>y</B>.*float32 ⟨1×10⟩.*peripheries=2.*shape=ellipse", source
    )


def test_unknown_and_dynamic_shapes_degrade_gracefully():
    nodes = [
        helper.make_node("Mystery", ["x"], ["m"], domain="com.example"),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [value("x", TensorProto.FLOAT, ["batch", None, 4])],
        [value("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    dot = onnx_digraph(model)
    found = {(t, h): attrs for t, h, attrs in edges(dot)}
    assert "label=<batch×?×4>" in found[("in0", "n0")]  # dim_param by name, unknown as ?
    assert "label" not in found[("n0", "n1")]  # nothing inferred through a custom op
    assert "com.example" in node_labels(dot)["n0"]
    assert 'fillcolor="#ffffff"' in re.search(r"^\s*n0 \[.*", dot.source, re.M).group(0)


def test_subgraphs_are_clusters_fed_from_the_outer_scope(control_flow):
    dot = onnx_digraph(control_flow)
    source = dot.source
    clusters = re.findall(r"subgraph (cluster_\w+) \{", source)
    assert len(clusters) == 3
    assert "If · then_branch" in source and "If · else_branch" in source
    assert "Loop · body" in source
    labels = node_labels(dot)
    inner = {lab.split("</B>")[0][3:]: nid for nid, lab in labels.items()}
    for op in ("Relu", "Neg", "Add", "Identity"):
        assert op in inner and inner[op].count("_") >= 3, op  # lives under its owner's id
    pairs = {(t, h) for t, h, _ in edges(dot)}
    # `x` is a main-graph input read inside both branches and the loop body
    for op in ("Relu", "Neg", "Add"):
        assert ("in0", inner[op]) in pairs
    # each cluster hands its results to its owner with a dashed ltail edge
    for cluster in clusters:
        assert re.search(rf"-> n\d \[.*ltail={cluster} style=dashed", source)
    # the loop-carried input inside the body feeds Add, scalar initializer shows its value
    assert "n = 3" in labels["n1"]
    # edges are all declared at top level, so no outer node is dragged into a cluster
    for block in re.findall(r"subgraph cluster_\w+ \{(.*?)\}", source, re.S):
        assert "->" not in block


def test_scan_body_is_a_cluster():
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "row"], ["s_out"]),
            helper.make_node("Identity", ["s_out"], ["o"]),
        ],
        "scan_body",
        [value("s_in", TensorProto.FLOAT, [3]), value("row", TensorProto.FLOAT, [3])],
        [value("s_out", TensorProto.FLOAT, [3]), value("o", TensorProto.FLOAT, [3])],
    )
    node = helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=body, num_scan_inputs=1)
    graph = helper.make_graph(
        [node],
        "scan",
        [value("init", TensorProto.FLOAT, [3]), value("xs", TensorProto.FLOAT, [5, 3])],
        [value("final", TensorProto.FLOAT, [3]), value("ys", TensorProto.FLOAT, [5, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    source = onnx_digraph(model).source
    assert "subgraph cluster_n0_0_0_ {" in source and "Scan · body" in source
    assert "num_scan_inputs 1" in source
    assert re.search(r"n0 -> out1 \[label=<5×3>", source)


def test_hostile_names_are_escaped_and_still_render(tmp_path):
    weird = 'a"b\\c<d>&e\n{f}]; -> g \\'
    nodes = [helper.make_node("Relu", [weird], ["out]"], name='na"me\\')]
    graph = helper.make_graph(
        nodes,
        'gr"aph',
        [value(weird, TensorProto.FLOAT, ["n<1>", 2])],
        [value("out]", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    dot = onnx_digraph(model, title="<b>title</b> & co")
    assert "&lt;d&gt;&amp;e" in dot.source and "\\x0a" in dot.source
    assert "&lt;b&gt;title" in dot.source
    assert sorted(node_labels(dot)) == ["in0", "n0", "out0"]
    svg = render(dot, tmp_path / "weird.svg")
    root = ET.parse(svg).getroot()
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Relu" in text and 'a"b\\c<d>&e' in text


def test_identity_of_an_initializer_folds_into_its_consumers():
    nodes = [
        helper.make_node("Identity", ["w"], ["w_alias"]),
        helper.make_node("Add", ["x", "w"], ["a"]),
        helper.make_node("Mul", ["a", "w_alias"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "alias",
        [value("x", TensorProto.FLOAT, [3])],
        [value("y", TensorProto.FLOAT, [3])],
        initializer=[weight("w", [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    dot = onnx_digraph(model)
    labels = node_labels(dot)
    assert sorted(labels) == ["in0", "n1", "n2", "out0"]  # no box for the Identity (n0)
    assert "w ⟨3⟩" in labels["n1"] and "w_alias ⟨3⟩" in labels["n2"]


def test_a_value_nobody_produces_gets_a_placeholder():
    nodes = [helper.make_node("Relu", ["ghost"], ["y"])]
    graph = helper.make_graph(nodes, "g", [], [value("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    dot = onnx_digraph(model)
    assert "ghost<BR/><I>(no producer)</I>" in node_labels(dot)["missing0"]
    assert ("missing0", "n0") in {(t, h) for t, h, _ in edges(dot)}


def test_output_is_deterministic(cnn, control_flow):
    for model in (cnn, control_flow):
        first = onnx_digraph(model).source
        again = onnx_digraph(onnx.load_from_string(model.SerializeToString())).source
        assert first == again


def test_title_and_direction(cnn):
    dot = onnx_digraph(cnn, rankdir="LR", title="My net")
    assert "rankdir=LR" in dot.source and "<B>My net</B>" in dot.source
    with pytest.raises(KdlErrors, match="unknown diagram direction 'sideways'"):
        onnx_digraph(cnn, rankdir="sideways")


# ---------------------------------------------------------------------------- torch exports


def test_torch_exported_cnn(torch_cnn, tmp_path):
    dot = onnx_digraph(torch_cnn)
    labels = node_labels(dot)
    ops = {re.match(r"<B>(\w+)</B>", lab).group(1) for nid, lab in labels.items()}
    assert {node.op_type for node in torch_cnn.graph.node} <= ops
    # every initializer shows up, with its shape, inside some op's box
    everything = " ".join(labels.values())
    for init in torch_cnn.graph.initializer:
        shape = "×".join(map(str, init.dims))
        assert f"{init.name} ⟨{shape}⟩" in everything or f"{init.name} = " in everything
    assert "label=<1×8×14×14>" in dot.source  # after the max-pool
    assert "label=<1×16>" in dot.source  # after Flatten
    png = render(dot, tmp_path / "cnn.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resnet_sized_export_renders_quickly(torch_resnet, tmp_path):
    convs = [n for n in torch_resnet.graph.node if n.op_type == "Conv"]
    assert len(convs) >= 50
    start = time.perf_counter()
    dot = onnx_digraph(torch_resnet)
    out = render(dot, tmp_path / "resnet.svg")
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"took {elapsed:.1f}s"
    ET.parse(out)
    labels = node_labels(dot)
    assert sum(lab.startswith("<B>Conv</B>") for lab in labels.values()) == len(convs)
    # the exporter's Identity(initializer) aliases are folded into the Convs that read them
    inits = {i.name for i in torch_resnet.graph.initializer}
    aliases = [
        n.output[0]
        for n in torch_resnet.graph.node
        if n.op_type == "Identity" and n.input[0] in inits
    ]
    everything = " ".join(labels.values())
    assert not any(lab.startswith("<B>Identity</B>") for lab in labels.values()) or not aliases
    assert all(f"{name} ⟨" in everything for name in aliases)


# ---------------------------------------------------------------------------- rendering


def test_render_svg_png_pdf_dot(cnn, tmp_path):
    dot = onnx_digraph(cnn)
    svg = render(dot, tmp_path / "m.svg")
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for op in ("Conv", "Relu", "Flatten", "Gemm"):
        assert op in text
    assert render(dot, str(tmp_path / "m.png")).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert render(dot, tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")
    assert render(dot, tmp_path / "m.dot").read_text(encoding="utf-8") == dot.source
    assert render(dot, tmp_path / "m.GV").read_text(encoding="utf-8") == dot.source
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.GV",
        "m.dot",
        "m.pdf",
        "m.png",
        "m.svg",
    ]


def test_unknown_suffix_is_refused_and_writes_nothing(cnn, tmp_path):
    with pytest.raises(KdlErrors) as info:
        render(onnx_digraph(cnn), tmp_path / "m.jpeg")
    message = info.value.errors[0].message
    assert "'.jpeg'" in message and "unknown diagram format" in message
    assert ".svg" in info.value.errors[0].hint and ".dot" in info.value.errors[0].hint
    with pytest.raises(KdlErrors, match="no suffix"):
        render(onnx_digraph(cnn), tmp_path / "diagram")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_named(cnn, tmp_path):
    target = tmp_path / "nope" / "m.svg"
    with pytest.raises(KdlErrors) as info:
        render(onnx_digraph(cnn), target)
    assert str(target.parent) in str(info.value)
    assert not (tmp_path / "nope").exists()


def test_unwritable_target_leaves_nothing(cnn, tmp_path):
    (tmp_path / "taken.dot").mkdir()  # a directory where the file should go
    with pytest.raises(KdlErrors, match=r"cannot write .*taken\.dot"):
        render(onnx_digraph(cnn), tmp_path / "taken.dot")
    assert [p.name for p in tmp_path.iterdir()] == ["taken.dot"]


def test_missing_dot_binary_gives_the_hint(cnn, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KdlErrors) as info:
        render(onnx_digraph(cnn), out / "m.svg")
    err = info.value.errors[0]
    assert "'dot'" in err.message and "not found" in err.message
    assert "apt-get install graphviz" in err.hint
    assert list(out.iterdir()) == []
    # a .dot file needs no binary at all
    assert render(onnx_digraph(cnn), out / "m.dot").exists()


def test_dot_failure_reports_stderr_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.svg"
    target.write_text("old")
    broken = graphviz.Digraph()
    broken.body.append("\tthis is { not dot\n")
    with pytest.raises(KdlErrors, match=r"'dot' failed to render \.svg .*syntax error"):
        render(broken, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.svg"]


# ---------------------------------------------------------------------------- loading


def test_load_onnx_round_trip(cnn, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(cnn.SerializeToString())
    assert load_onnx(path) == cnn
    assert load_onnx(str(path)) == cnn


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not an ONNX file"),
        (b"model Net {\n  dense: Dense(10)\n}\n", "not an ONNX file"),
        (bytes(range(256)) * 4, "not an ONNX file"),
    ],
)
def test_load_onnx_refuses_other_files(tmp_path, content, expected):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(KdlErrors, match=expected) as info:
        load_onnx(path)
    assert str(path) in str(info.value)


def test_load_onnx_missing_file_and_directory(tmp_path):
    with pytest.raises(KdlErrors, match="no such file"):
        load_onnx(tmp_path / "absent.onnx")
    with pytest.raises(KdlErrors, match="is a directory"):
        load_onnx(tmp_path)
