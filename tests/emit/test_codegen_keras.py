"""`ktrans codegen --target keras`: the generated module builds the same model in Keras 3.

For every example (and a file using most layers and expressions): generate the module
through the CLI, import it by path, build the model and check it against our graph
(parameter counts, layer names, the output shapes of every layer call, inputs, outputs);
run ruff on it with its defaults and with the project's rules; and check the computation
itself: against the example's Keras twin with the same weights, and against our ONNX
lowering on onnxruntime. Hostile names (Python keywords and builtins as model, input and
output names) must give safe, valid Python.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transpiler.emit.code.keras import RESERVED, generate_keras, is_safe_identifier
from transpiler.graph import load

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

from tests.test_examples import EXAMPLES, KERAS_TWINS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.kdl"))
SLOW = {"resnet50", "mobilenet_v2"}
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXAMPLE_NAMES]
_counter = itertools.count()

# Most layer families, wrappers, initial states, return_state, shared layers, blocks,
# initializers, regularizers, trainable=false and every kind of expression.
KITCHEN_SINK = """
block Residual(units: int) {
    input x
    y = x |> Dense(units, activation=gelu, kernel_initializer=RandomNormal(stddev=0.02))
    output x + y
}

model Sink {
    input img: float32[16, 16, 3]
    input seq: float32[10, 8]
    input ids: int64[10]
    input h0: float32[6]

    c = img |> Conv2D(8, 3, padding=same, kernel_regularizer=l2(1e-4), use_bias=false)
            |> BatchNormalization(scale=false)
            |> LeakyReLU(0.1)
            |> SeparableConv2D(8, 3, depth_multiplier=2)
            |> DepthwiseConv2D(3, strides=2, padding=same)
            |> Conv2DTranspose(4, 3, strides=2, output_padding=1)
            |> ZeroPadding2D(((0, 1), (2, 0)))
            |> Cropping2D(1)
            |> UpSampling2D(2, interpolation=bilinear)
            |> MaxPooling2D(3, strides=2, padding=same)
            |> AveragePooling2D(2)
            |> PReLU(shared_axes=[1, 2])
            |> ReLU(max_value=6.0)
            |> GroupNormalization(2)
    g = c |> GlobalAveragePooling2D(keepdims=true) |> Flatten()

    e = ids |> Embedding(100, 8, embeddings_regularizer=l1(1e-5))
    s = Concatenate()(seq, e) |> LayerNormalization()
          |> Conv1D(8, 3, padding=causal, dilation_rate=2)
    r, state = s |> GRU(6, return_sequences=true, return_state=true, reset_after=false)
    r2 = LSTM(6, return_sequences=true, go_backwards=true)(r, h0, state)
    b = r2 |> Bidirectional(SimpleRNN(4, return_sequences=true), merge_mode=sum)
    t = b |> TimeDistributed(Dense(5, trainable=false))
    att = MultiHeadAttention(2, 4, value_dim=3, use_gate=true)(t, r2, t)
    d = Dot(axes=[2, 2], normalize=true)(att, att)
    m = Average()(Multiply()(att, att), Maximum()(att, att))
    p = m |> Permute([2, 1]) |> Reshape([-1])
    q = p |> RepeatVector(2) |> Softmax(axis=1)
    z = transpose(q, [0, 2, 1]) |> expand_dims(axis=1) |> squeeze(axis=1)
    w = reshape(z, [2, -1]) ** 2.0 - 1.5 / reshape(z, [2, -1])
    v1 = clip(w[:, 0, 1:7:2], 0.0, 3.0) * sum(d, axis=[1, 2], keepdims=true)[:, :, 0]
    v = expand_dims(v1, axis=2) @ expand_dims(v1, axis=1)
    k = concat(g, mean(e, axis=1), axis=-1) |> Residual(12) |> Dropout(0.1) |> ELU(0.5)
    shared = Dense(3, name="shared-head_1")
    output probs = shared(concat(k, flatten(v), max(d, axis=-1), axis=1))
    output again = shared(concat(k, flatten(v), min(d, axis=-1), axis=1))
    output aux = log_softmax(Activation(tanh)(minimum(v, 1.0)), axis=1)
}
"""

# channels_first, a dynamic reshape (a Reshape layer in Keras), activations as functions
CHANNELS_FIRST = """
model CF(data_format=channels_first) {
    input x: float32[3, 8, 8]
    input s: float32[?, 4, 2]
    y = x |> Conv2D(4, 3, padding=same) |> BatchNormalization(axis=1) |> MaxPooling2D(2)
          |> Flatten()
    output o = Dense(2)(y)
    output r = reshape(s, [-1, 8]) |> LSTM(3)
    output f = mish(o) + gelu(o) - linear(o) + exponential(o) * swish(o) + abs(o) ** 2
}
"""

# .kdl names that are Python keywords, builtins, or the generated module's own names
HOSTILE = """
block Class(units: int) {
    input x
    output Dense(units, name="my-layer_v2")(x)
}

model class {
    input def: float32[4]
    input lambda: float32[4]
    input __name__: float32[4]
    input keras: float32[4]
    input import: float32[4]
    keras_ = def + lambda + keras + import
    layers = keras_ |> Class(3)
    output None_ = layers
    output print = relu(__name__)
    output build_model = Dense(2, name="ops")(keras_)
    output model = Dense(2, name="layers")(keras_)
    output if = keras_ * 2.0
}

train class {
    loss = { None_: mse, print: mse, build_model: mse, model: mse, if: mae }
    optimizer = Adam(learning_rate=ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.5))
    metrics = { print: [mae] }
    callbacks = [EarlyStopping(patience=2)]
}
"""

TRAINED = """
model M {
    input x: float32[4]
    output a = Dense(2)(x)
    output b = Dense(3, activation=softmax)(x)
}

train M {
    loss = { a: none, b: categorical_crossentropy(label_smoothing=0.1) }
    optimizer = SGD(learning_rate=PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
                    momentum=0.9, clipnorm=1.0)
    metrics = { b: [accuracy, top_k_categorical_accuracy(k=2), auc(name=my_auc)] }
    weighted_metrics = { a: [mse] }
    batch_size = 16
    epochs = 2
    shuffle = false
}
"""


# ---------------------------------------------------------------- helpers


def codegen(argv: list[str], monkeypatch) -> int:
    """`ktrans codegen ...` through transpiler.cli.main (registering the command if the
    CLI does not list it yet)."""
    from transpiler import cli, cli_codegen

    original = cli._register_optional_commands

    def register(sub) -> None:
        original(sub)
        if "codegen" not in sub.choices:
            cli_codegen.register(sub)

    monkeypatch.setattr(cli, "_register_optional_commands", register)
    return cli.main(["codegen", *argv])


def generate_file(src: Path, tmp_path: Path, monkeypatch, model: str | None = None) -> Path:
    out = tmp_path / f"{src.stem}_{next(_counter)}_keras.py"
    argv = [str(src), "--target", "keras", "-o", str(out)]
    if model:
        argv += ["--model", model]
    assert codegen(argv, monkeypatch) == 0
    return out


def import_path(path: Path):
    name = f"ktrans_generated_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keras_shape(shape) -> tuple:
    return (None, *(d if isinstance(d, int) else None for d in shape[1:]))


def check_structure(graph, model, extra_layers: set[str] = frozenset()) -> None:
    """Counts, names and every call's output shapes, as ktrans has them."""
    assert model.count_params() == graph.param_count
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == graph.trainable_count
    assert model.name == graph.name
    ours = sorted(la.name for la in graph.layers if la.family != "expression")
    theirs = sorted(la.name for la in model.layers if not isinstance(la, layers.InputLayer))
    assert sorted([*ours, *extra_layers]) == theirs
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.layer.family == "expression":
            continue
        k = calls.get(node.layer.name, 0)
        calls[node.layer.name] = k + 1
        keras_node = model.get_layer(node.layer.name)._inbound_nodes[k]
        got = [tuple(t.shape) for t in keras_node.output_tensors]
        assert got == [keras_shape(v.type.shape) for v in node.outputs], node.layer.name
    assert [t.name for t in model.inputs] == [v.name for v in graph.inputs]
    for t, v in zip(model.inputs, graph.inputs):
        assert tuple(t.shape) == keras_shape(v.type.shape)
        assert t.dtype == v.type.dtype
    outputs = model.output if isinstance(model.output, dict) else {"": model.output}
    if len(graph.outputs) == 1:
        outputs = dict(zip(graph.outputs, outputs.values()))
    assert list(outputs) == list(graph.outputs)
    for name, v in graph.outputs.items():
        assert tuple(outputs[name].shape) == keras_shape(v.type.shape)


def ruff_command() -> list[str] | None:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    return None


def check_ruff(path: Path) -> None:
    """ruff's defaults (line length 88) and the project's rules (line length 100)."""
    ruff = ruff_command()
    if ruff is None:
        pytest.skip("ruff is not installed")
    for config in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
            r = subprocess.run(
                [*ruff, *args, *config, str(path)], capture_output=True, text=True, check=False
            )
            assert r.returncode == 0, f"ruff {' '.join(args + config)}:\n{r.stdout}{r.stderr}"


def check_safe_names(code: str) -> None:
    """Every name the module binds is a safe identifier, and its own names are its own."""
    tree = ast.parse(code)
    own = {"build_model", "compile_model", "FIT_ARGS", "keras", "layers", "ops", "model", "_"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assert node.id in own or is_safe_identifier(node.id), node.id
        if isinstance(node, ast.FunctionDef):
            bound = {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
            if node.name == "build_model":
                assert not bound & (RESERVED - {"model"}), bound & RESERVED
    top = [n for n in tree.body if not isinstance(n, (ast.Expr, ast.Import, ast.ImportFrom))]
    names = {n.name for n in top if isinstance(n, ast.FunctionDef)}
    assert names <= {"build_model", "compile_model"}


def random_feeds(graph, rng, batch: int = 2) -> dict[str, np.ndarray]:
    feeds = {}
    for v in graph.inputs:
        shape = [batch] + [d if isinstance(d, int) else 5 for d in v.type.shape[1:]]
        if v.type.dtype.startswith("int"):
            feeds[v.name] = rng.integers(0, 50, size=shape).astype(np.int64)
        elif v.type.dtype == "bool":  # a mask: mostly true, every row keeps its first step
            feeds[v.name] = rng.random(shape) < 0.7
            feeds[v.name][..., 0] = True
        else:
            feeds[v.name] = rng.normal(size=shape).astype(np.float32)
    return feeds


def predict(model, graph, feeds) -> list[np.ndarray]:
    arrays = [feeds[v.name] for v in graph.inputs]
    out = model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0)
    if isinstance(out, dict):
        return [np.asarray(out[n]) for n in graph.outputs]
    if isinstance(out, (list, tuple)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def random_weights(graph, rng) -> dict[str, dict[str, np.ndarray]]:
    weights = {}
    for layer in graph.layers:
        weights[layer.name] = {}
        for w in layer.weights or []:
            a = rng.normal(0, 0.3, size=w.shape).astype(np.float32)
            if "variance" in w.name:
                a = rng.uniform(0.5, 1.5, size=w.shape).astype(np.float32)
            weights[layer.name][w.name] = a
    return weights


def compare_with_onnx(graph, model, tmp_path) -> None:
    """The generated Keras model and our ONNX model, with the same weights, agree."""
    from transpiler.emit.onnx import build_model
    from transpiler.errors import KdlErrors
    from transpiler.runtime.session import create_session

    rng = np.random.default_rng(0)
    weights = random_weights(graph, rng)
    for layer in graph.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(
                [weights[layer.name][w.name] for w in layer.weights]
            )
    try:
        proto = build_model(graph, weights=weights)
    except (KdlErrors, NotImplementedError) as e:
        if "cannot be lowered" in str(e) or isinstance(e, NotImplementedError):
            pytest.skip(f"a layer has no ONNX lowering yet: {e}")
        raise
    feeds = random_feeds(graph, rng, batch=3)
    ours = create_session(proto).run(None, feeds)
    for a, b in zip(ours, predict(model, graph, feeds)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


# ---------------------------------------------------------------- the examples


@pytest.mark.parametrize("name", PARAMS)
def test_examples(name, tmp_path, monkeypatch, capsys):
    src = EXAMPLES / f"{name}.kdl"
    out = generate_file(src, tmp_path, monkeypatch)
    assert f"wrote {out}" in capsys.readouterr().out
    program, graphs = load(src)
    graph = next(iter(graphs.values()))
    code = out.read_text()
    check_safe_names(code)
    check_ruff(out)
    module = import_path(out)
    model = module.build_model()
    check_structure(graph, model)
    if graph.trains:
        module.compile_model(model)
        train = graph.trains["default"]
        assert module.FIT_ARGS["batch_size"] == train.batch_size
        assert module.FIT_ARGS["epochs"] == train.epochs
    else:
        assert not hasattr(module, "compile_model")


@pytest.mark.parametrize("name", PARAMS)
def test_examples_compute_what_the_keras_twins_compute(name, tmp_path, monkeypatch):
    """The twin's weights, copied layer by layer (found by walking both graphs), give the
    generated model the twin's outputs."""
    from tests.emit.test_keras_weights import pair_layers

    src = EXAMPLES / f"{name}.kdl"
    _, graphs = load(src)
    graph = next(iter(graphs.values()))
    model = import_path(generate_file(src, tmp_path, monkeypatch)).build_model()
    twin = KERAS_TWINS[name]()
    from tests.emit.parity import randomize_keras

    randomize_keras(twin, 5)
    for ours, theirs in pair_layers(graph, twin).items():
        model.get_layer(ours).set_weights(theirs.get_weights())
    feeds = random_feeds(graph, np.random.default_rng(1), batch=1 if name in SLOW else 2)
    for a, b in zip(predict(model, graph, feeds), predict(twin, graph, feeds)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mnist_cnn", "ticket_triage", "addition_rnn", "tweet_pair"])
def test_weights_saved_by_the_generated_model_load(name, tmp_path, monkeypatch):
    """Layer names line up: a .weights.h5 of the generated model loads into our graph."""
    from tests.emit.parity import randomize_keras
    from transpiler.emit.onnx.weights import load_weights

    src = EXAMPLES / f"{name}.kdl"
    _, graphs = load(src)
    graph = next(iter(graphs.values()))
    model = import_path(generate_file(src, tmp_path, monkeypatch)).build_model()
    randomize_keras(model, 6)
    path = tmp_path / "generated.weights.h5"
    model.save_weights(str(path))
    loaded = load_weights(path, graph)
    for layer in graph.layers:
        for w, variable in zip(layer.weights or [], model.get_layer(layer.name).weights):
            np.testing.assert_array_equal(loaded[layer.name][w.name], np.asarray(variable))


# ---------------------------------------------------------------- more of the language


@pytest.mark.parametrize(
    ("text", "extra"), [(KITCHEN_SINK, set()), (CHANNELS_FIRST, {"reshape"})], ids=["sink", "cf"]
)
def test_layers_and_expressions(text, extra, tmp_path, monkeypatch):
    src = tmp_path / "model.kdl"
    src.write_text(text)
    _, graphs = load(src)
    graph = next(iter(graphs.values()))
    out = generate_file(src, tmp_path, monkeypatch)
    check_safe_names(out.read_text())
    check_ruff(out)
    module = import_path(out)
    model = module.build_model()
    check_structure(graph, model, extra)
    model_again = module.build_model()  # Keras's automatic names have moved on
    assert model_again.count_params() == graph.param_count
    compare_with_onnx(graph, model, tmp_path)


def test_language_tour(tmp_path, monkeypatch):
    src = ROOT / "tests" / "fixtures" / "valid" / "language_tour.kdl"
    _, graphs = load(src)
    out = generate_file(src, tmp_path, monkeypatch)
    check_ruff(out)
    model = import_path(out).build_model()
    check_structure(graphs["Tour"], model)
    compare_with_onnx(graphs["Tour"], model, tmp_path)


def test_every_layer_argument_is_a_keras_argument():
    """Required arguments are written by position, the others by name: both must be
    Keras's, for every layer of the catalogue (Keras takes the two deprecated ones
    through **kwargs)."""
    import inspect

    from tests.layers.keras_ref import keras_class
    from transpiler.layers import LAYERS

    through_kwargs = {("Embedding", "input_length"), ("LayerNormalization", "rms_scaling")}
    for name, cls in sorted(LAYERS.items()):
        keras_cls = keras_class(cls.keras_class())
        params = [p for p in inspect.signature(keras_cls.__init__).parameters if p != "self"]
        required = [a.name for a in cls.signature if a.required]
        assert params[: len(required)] == required, name
        for a in cls.signature:
            assert a.name in params or (name, a.name) in through_kwargs, (name, a.name)


def test_only_non_default_arguments_are_written(tmp_path):
    src = tmp_path / "m.kdl"
    src.write_text(
        "model M {\n input x: float32[8, 8, 2]\n"
        " Conv2D(4, (3, 3), strides=1, padding=valid, activation=linear, use_bias=true,\n"
        "        kernel_initializer=glorot_uniform, dilation_rate=[1, 1])\n"
        " Conv2D(4, [3, 1], strides=2, kernel_initializer=he_normal,\n"
        "        bias_initializer=Constant(0.1), bias_regularizer=l1_l2(l1=0.01, l2=0.02))\n"
        " BatchNormalization(momentum=0.99, epsilon=0.001, axis=-1)\n"
        " Flatten()\n Dense(3, kernel_initializer=GlorotUniform(seed=None))\n}\n"
    )
    program, graphs = load(src)
    code = generate_keras(graphs["M"], program, str(src))
    assert 'layers.Conv2D(4, 3, name="conv2d")(x)' in code
    assert "kernel_size" not in code and "strides=1" not in code and "epsilon" not in code
    assert "layers.Conv2D(\n        4,\n        (3, 1),\n        strides=2," in code
    assert "kernel_initializer=keras.initializers.HeNormal()" in code
    assert "bias_initializer=keras.initializers.Constant(value=0.1)" in code
    assert "bias_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.02)" in code
    assert 'layers.BatchNormalization(name="batch_normalization")' in code
    assert 'layers.Dense(3, name="dense")' in code


def test_shared_layers_and_blocks(tmp_path):
    src = ROOT / "tests" / "fixtures" / "valid" / "language_tour.kdl"
    program, graphs = load(src)
    code = generate_keras(graphs["Tour"], program, str(src))
    assert 'shared_dense_layer = layers.Dense(32, name="shared_dense")' in code
    assert code.count("shared_dense_layer(") == 2
    assert "    # block projection (Projection)\n" in code
    program, graphs = load(EXAMPLES / "toy_resnet.kdl")
    code = generate_keras(graphs["ToyResNet"], program, "toy_resnet.kdl")
    assert "\n\n    # block residual_block (ResidualBlock)\n" in code
    assert "\n\n    # block residual_block_1 (ResidualBlock)\n" in code  # a sibling


def test_nested_blocks_are_indented_comments():
    program, graphs = load(EXAMPLES / "resnet50.kdl")
    code = generate_keras(graphs["ResNet50"], program, "resnet50.kdl")
    assert "    # block stack (Stack)\n    #   block conv_block (ConvBlock)\n" in code
    assert "    #     block conv_bn (ConvBN)\n" in code


def test_hostile_names_give_safe_python(tmp_path, monkeypatch):
    src = tmp_path / "hostile.kdl"
    src.write_text(HOSTILE)
    _, graphs = load(src)
    graph = graphs["class"]
    out = generate_file(src, tmp_path, monkeypatch)
    code = out.read_text()
    check_safe_names(code)
    check_ruff(out)
    module = import_path(out)
    assert module.build_model is not None and module.keras is keras
    model = module.build_model()
    check_structure(graph, model)
    assert model.name == "class"
    assert [t.name for t in model.inputs] == ["def", "lambda", "__name__", "keras", "import"]
    module.compile_model(model)
    assert "# not generated: the train block's callbacks, EarlyStopping" in code
    # the names reach the code as string literals only
    strings = {n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)}
    assert {"def", "lambda", "__name__", "import", "my-layer_v2", "None_", "if"} <= strings


def test_compile_and_fit(tmp_path, monkeypatch):
    """compile_model() and FIT_ARGS are what Keras takes: losses (one of them none),
    a schedule, metrics per output with their log names, fit settings."""
    src = tmp_path / "trained.kdl"
    src.write_text(TRAINED)
    out = generate_file(src, tmp_path, monkeypatch)
    check_ruff(out)
    module = import_path(out)
    code = out.read_text()
    assert "keras.optimizers.schedules.PiecewiseConstantDecay(" in code
    compile_call = next(
        n
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "model.compile"
    )
    kwargs = {k.arg: ast.unparse(k.value) for k in compile_call.keywords}
    assert kwargs["loss"] == (
        "{'a': None, 'b': keras.losses.CategoricalCrossentropy(label_smoothing=0.1)}"
    )
    assert module.FIT_ARGS == {"batch_size": 16, "epochs": 2, "shuffle": False}
    model = module.build_model()
    module.compile_model(model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = {
        "a": rng.normal(size=(32, 2)).astype(np.float32),
        "b": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=32)],
    }
    history = model.fit(x, y, verbose=0, **module.FIT_ARGS)
    assert {"loss", "a_mse", "b_accuracy", "b_top_k_categorical_accuracy", "b_my_auc"} <= set(
        history.history
    )


def test_several_models_need_model(tmp_path, monkeypatch, capsys):
    src = tmp_path / "two.kdl"
    src.write_text(
        "model A {\n input x: float32[3]\n Dense(2)\n}\n"
        "model B {\n input x: float32[3]\n Dense(4)\n}\n"
    )
    out = tmp_path / "out.py"
    assert codegen([str(src), "-o", str(out)], monkeypatch) == 1
    assert "choose one with --model" in capsys.readouterr().err
    assert not out.exists()
    assert codegen([str(src), "-o", str(out), "--model", "B"], monkeypatch) == 0
    assert 'layers.Dense(4, name="dense")' in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_usage_errors(tmp_path, monkeypatch, capsys):
    src = EXAMPLES / "mnist_mlp.kdl"
    with pytest.raises(SystemExit) as e:
        codegen([str(src), "--target", "pytorch"], monkeypatch)
    assert e.value.code == 2
    assert codegen([str(src), "-o", str(tmp_path / "m.txt")], monkeypatch) == 1
    assert "Python module" in capsys.readouterr().err
    assert codegen([str(src), "-o", str(tmp_path / "no" / "m.py")], monkeypatch) == 1
    assert "no such directory" in capsys.readouterr().err


def test_default_output_name(tmp_path, monkeypatch):
    src = tmp_path / "net.kdl"
    src.write_text("model Net {\n input x: float32[3]\n Dense(2)\n}\n")
    monkeypatch.chdir(tmp_path)
    assert codegen([str(src)], monkeypatch) == 0
    assert (tmp_path / "net_keras.py").is_file()


def test_dots_in_layer_names_get_a_note():
    """ktrans and Keras take '.' in layer names; Keras's torch backend does not."""
    program, graphs = load(
        "m.kdl", text='model M {\n input x: float32[3]\n Dense(2, name="head.v2")\n}\n'
    )
    code = generate_keras(graphs["M"], program)
    assert "torch backend takes no '.' in layer names" in code
    assert 'name="head.v2"' in code
