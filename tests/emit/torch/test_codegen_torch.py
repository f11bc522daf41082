"""`ktrans codegen --target torch`: the registry covers the catalogue, the command writes
the module and its initial weights (the numbers `ktrans build --seed` starts from), the
generated files of every example compile, pass ruff and stay within a line budget,
hostile names never become code, and a file using most layers and expressions (the
Keras target's kitchen sink) computes what its Keras twin computes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.emit.torch.harness import import_code, model_class, run_torch

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.kdl"))

#: generated lines per example, at most (ResNet50 and MobileNetV2 spell out ~160 layers
#: in their constructors and weight tables)
LINE_BUDGET = {"mobilenet_v2": 1200, "resnet50": 1100}
DEFAULT_BUDGET = 400


# ---------------------------------------------------------------- the registry


def test_every_catalogue_layer_has_an_emitter():
    from transpiler.emit.torch import TORCH_LAYERS
    from transpiler.layers import LAYERS

    assert sorted(set(LAYERS) - set(TORCH_LAYERS)) == []


def test_every_expression_has_an_emitter():
    from transpiler.emit.torch import TORCH_LAYERS
    from transpiler.layers import expression_shapes, expressions

    kinds = [
        cls
        for module in (expressions, expression_shapes)
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, expressions.Expression)
        and cls is not expressions.Expression
    ]
    assert kinds and sorted(c.__name__ for c in kinds if c.__name__ not in TORCH_LAYERS) == []


FAMILY_MODULES = {
    "activation_layers": "activations",
    "recurrent_wrappers": "recurrent",
    "expression_shapes": "expressions",
}


def test_each_emitter_lives_in_its_family_module():
    """transpiler/emit/torch mirrors transpiler/layers by family."""
    from transpiler.emit.torch import TORCH_LAYERS
    from transpiler.layers import LAYERS

    for name, cls in LAYERS.items():
        family = cls.__module__.rsplit(".", 1)[1]
        expected = FAMILY_MODULES.get(family, family)
        assert TORCH_LAYERS[name].emit.__module__ == f"transpiler.emit.torch.{expected}", name


def test_generating_does_not_import_torch():
    """torch is needed to run the module, not to write it."""
    code = (
        "import sys\n"
        "from transpiler.emit.torch import generate_torch\n"
        "from transpiler.graph import load_one\n"
        "program, graph = load_one('examples/resnet50.kdl')\n"
        "assert 'class ResNet50' in generate_torch(graph, program)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_helper_definition_resolves():
    """templates/torch_layers: unique names, and what each uses is defined there."""
    from transpiler.emit.torch.helpers import closure, library

    lib = library()
    every = closure(set(lib))
    assert [d.name for d in every] == list(lib)
    assert "class BatchNormalization(nn.Module):" in lib["BatchNormalization"].source


# ---------------------------------------------------------------- the command


def codegen(argv: list[str]) -> int:
    from transpiler import cli

    return cli.main(["codegen", *argv])


@pytest.mark.parametrize("name", ["mnist_mlp", "toy_resnet"])
def test_codegen_writes_the_module_and_the_initial_weights(tmp_path, capsys, name):
    """The module with <Model>.init.npz computes what the ONNX model with the training
    engine's initial weights (`initial_weights(graph, 3)`) computes; for a model of Dense
    layers that is `ktrans build --seed 3` itself (build draws convolution kernels
    straight into ONNX's layout: the same distribution, other numbers)."""
    pytest.importorskip("torch")
    from transpiler.emit.onnx import build_model, initial_weights
    from transpiler.graph import load_one
    from transpiler.runtime.session import create_session

    src = ROOT / "examples" / f"{name}.kdl"
    assert codegen([str(src), "--target", "torch", "-o", str(tmp_path), "--seed", "3"]) == 0
    _, graph = load_one(src)
    cls = graph.name
    assert f"{cls}.py" in capsys.readouterr().out
    names = {p.name for p in tmp_path.iterdir()}
    # both examples have a train block: the folder is the PyTorch training bundle
    assert {f"{cls}.init.npz", f"{cls}.py", f"train_{cls}.py", "ktrans_runtime"} <= names
    module = import_code((tmp_path / f"{cls}.py").read_text())
    with np.load(tmp_path / f"{cls}.init.npz") as arrays:
        net = getattr(module, cls).from_keras_weights(arrays).eval()
    (inp,) = graph.inputs
    shape = (2, *inp.type.shape[1:])
    x = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    (ours,) = run_torch(net, graph, {inp.name: x})
    if name == "mnist_mlp":
        proto = build_model(graph, seed=3)
    else:
        proto = build_model(graph, weights=initial_weights(graph, 3))
    (onnx_out,) = create_session(proto).run(None, {inp.name: x})
    np.testing.assert_allclose(ours, onnx_out, rtol=1e-4, atol=1e-5)


def test_codegen_refuses_a_file_as_the_folder(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    src = ROOT / "examples" / "mnist_mlp.kdl"
    assert codegen([str(src), "--target", "torch", "-o", str(target)]) == 1
    assert "it is a file" in capsys.readouterr().err


# ---------------------------------------------------------------- the generated files


def ruff(path: Path) -> None:
    """ruff's defaults (line length 88) and the project's rules (line length 100)."""
    from tests.emit.test_codegen_keras import check_ruff

    check_ruff(path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """Every example's module (the CLI's own test above covers the weights file)."""
    from transpiler.emit.torch import torch_module
    from transpiler.graph import load_one

    out = tmp_path_factory.mktemp("generated")
    paths = {}
    for name in EXAMPLES:
        src = ROOT / "examples" / f"{name}.kdl"
        program, graph = load_one(src)
        module = torch_module(graph, program, str(src))
        paths[name] = out / f"{module.class_name}.py"
        paths[name].write_text(module.code)
    return paths


def test_generated_examples_compile_and_pass_ruff(generated):
    for path in generated.values():
        compile(path.read_text(), str(path), "exec")
    ruff(next(iter(generated.values())).parent)


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_examples_stay_within_their_line_budget(generated, name):
    lines = generated[name].read_text().count("\n")
    assert lines <= LINE_BUDGET.get(name, DEFAULT_BUDGET), lines


def test_generated_modules_import_torch_only(generated):
    """Issue 11: the module imports torch only (numpy, ktrans and files are the
    caller's): every import statement, at any depth, is of torch, typing or
    __future__."""
    allowed = {"torch", "typing", "__future__"}
    for name, path in generated.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{name}: {ast.unparse(node)}"


def test_channels_first_copies_are_contiguous(generated):
    """The permute to channels-first is a copy in torch's contiguous strides: a permuted
    view (and its .contiguous(), the view itself with one channel) looks channels_last,
    and the convolutions' weight gradients then come in strides DDP's buckets warn
    about ("Grad strides do not match bucket view strides")."""
    code = generated["mnist_cnn"].read_text()
    assert "x = x.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)" in code
    assert "x = x.permute(0, 2, 3, 1)\n" in code  # back to Keras's order: Flatten copies


def test_blocks_are_classes_and_repeats_are_loops(generated):
    """One class per block definition; `repeat` as a loop over an nn.ModuleList."""
    code = generated["resnet50"].read_text()
    classes = [n.name for n in ast.parse(code).body if isinstance(n, ast.ClassDef)]
    for block in ("ConvBN", "Bottleneck", "ConvBlock", "IdentityBlock", "Stack", "ResNet50"):
        assert classes.count(block) == 1, classes
    assert "for block in self.identity_blocks:" in code
    assert "nn.ModuleList(" in code
    mobile = generated["mobilenet_v2"].read_text()
    assert "for block in self.inverted_residuals:" in mobile
    assert "for lstm in self.lstms:" in generated["addition_rnn"].read_text()
    # a shared layer is one attribute, called twice
    tweets = generated["tweet_pair"].read_text()
    assert tweets.count("self.lstm = ") == 1 and tweets.count("self.lstm(") == 2


# ---------------------------------------------------------------- names


def kdl_module(tmp_path, text: str, name: str = "m.kdl"):
    from transpiler.emit.torch import generate_torch
    from transpiler.graph import load

    src = tmp_path / name
    src.write_text(text)
    program, graphs = load(str(src))
    graph = next(iter(graphs.values()))
    return graph, generate_torch(graph, program, str(src))


ODD = """
block forward(training: int) {
    input self
    output Dense(training, name="my-layer.v2")(self)
}


model torch {
    input nn: float32[4]
    input return_masks: float32[4]
    input x: float32[4]
    state_dict = nn + return_masks
    parameters = state_dict |> forward(3) |> Dense(2, name="to")
    np = Dense(2, name="train")(x)
    output __class__ = parameters * np
    output self = Dense(1, name="KERAS_LAYERS")(x)
}
"""


def assert_names_safe(code: str) -> None:
    """Every name a method binds is a checked identifier that shadows none of the
    module's own; no attribute set is a torch.nn.Module attribute or private."""
    from transpiler.emit.code.keras_names import is_safe_identifier
    from transpiler.emit.torch.names import NN_MODULE_ATTRIBUTES

    own = {"np", "torch", "nn", "KERAS_LAYERS", "keras_weight_places", "keras_to_torch"}
    for fn in ast.walk(ast.parse(code)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assert node.id == "_" or is_safe_identifier(node.id), node.id
                assert node.id not in own, node.id
            if isinstance(node, ast.arg):
                assert node.arg == "self" or is_safe_identifier(node.arg), node.arg
                assert node.arg not in own, node.arg
            on_self = isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "self"
            if on_self and isinstance(node.ctx, ast.Store):
                assert not node.attr.startswith("_"), node.attr
                assert node.attr not in NN_MODULE_ATTRIBUTES, node.attr


def test_hostile_names_never_become_code(tmp_path):
    """.kdl names that are keywords, builtins, torch.nn.Module attributes or the
    module's own names are renamed; the model still runs and keeps its Keras names."""
    torch = pytest.importorskip("torch")
    graph, code = kdl_module(tmp_path, ODD)
    assert_names_safe(code)
    cls = model_class(import_code(code))
    assert cls.__name__ == "Torch" and cls.input_names == ("nn", "return_masks", "x")
    net = cls()
    assert callable(net.forward) and isinstance(net.training, bool)
    keys = set(net.keras_weights())
    assert {"my-layer.v2/kernel", "to/kernel", "train/kernel", "KERAS_LAYERS/kernel"} <= keys
    outs = net(*(torch.ones(2, 4) for _ in range(3)))
    assert [tuple(o.shape) for o in outs] == [(2, 2), (2, 1)]


def test_the_keras_targets_hostile_file(tmp_path):
    from tests.emit.test_codegen_keras import HOSTILE

    pytest.importorskip("torch")
    _, code = kdl_module(tmp_path, HOSTILE)
    assert_names_safe(code)
    path = tmp_path / "hostile_torch.py"
    path.write_text(code)
    ruff(path)
    model_class(import_code(code))()


def test_a_quoted_name_is_an_error_before_any_code(tmp_path):
    from transpiler.errors import KdlErrors

    text = 'model M {\n input x: float32[4]\n Dense(3, name="a\\"); import os; (\\"")\n}\n'
    with pytest.raises(KdlErrors, match="name expected a name of letters"):
        kdl_module(tmp_path, text)


# ---------------------------------------------------------------- a file using most layers


@pytest.mark.parametrize("which", ["KITCHEN_SINK", "CHANNELS_FIRST"])
def test_kitchen_sink_matches_keras(tmp_path, which):
    """The Keras target's test files: most layer families, wrappers, initial states,
    shared layers, blocks, frozen layers and every kind of expression."""
    import tests.emit.test_codegen_keras as keras_tests
    from tests.emit.parity import randomize_keras
    from tests.emit.torch.harness import compare_with_keras_target, load_graph

    program, graph, src = load_graph(getattr(keras_tests, which), tmp_path)
    code, _ = compare_with_keras_target(program, graph, str(src), randomize_keras)
    path = tmp_path / "sink_torch.py"
    path.write_text(code)
    ruff(path)


def _permutes(code: str) -> int:
    """permute calls in the forward methods of the model's and the blocks' classes."""
    from transpiler.emit.torch.helpers import library

    helpers = set(library())
    count = 0
    for cls in ast.parse(code).body:
        if isinstance(cls, ast.ClassDef) and cls.name not in helpers:
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "forward":
                    count += ast.unparse(fn).count(".permute(")
    return count


@pytest.mark.parametrize(
    ("name", "permutes"),
    [("mnist_cnn", 2), ("toy_resnet", 1), ("resnet50", 1), ("mobilenet_v2", 1)],
)
def test_channels_last_cnns_permute_only_at_the_edges(generated, name, permutes):
    """One permute to channels-first after the input, and one back where the conv stack
    meets a layer that needs Keras's order (mnist_cnn's Flatten); the global poolings
    reduce the channels-first tensor as it is."""
    assert _permutes(generated[name].read_text()) == permutes


def test_what_the_target_does_not_write_is_an_error_and_writes_nothing(tmp_path, capsys):
    """As for ONNX, attention over other axes than Keras's default is refused, with the
    layer named; no file is written."""
    src = tmp_path / "m.kdl"
    src.write_text(
        "model M {\n input q: float32[2, 3, 4]\n"
        " output y = MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=[2])(q, q)\n}\n"
    )
    out = tmp_path / "out"
    assert codegen([str(src), "--target", "torch", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "multi_head_attention" in err and "attention_axes=[2]" in err
    assert not out.exists()
