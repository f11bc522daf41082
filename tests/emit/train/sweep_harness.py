"""The machinery of the catalogue training sweep (test_catalogue_training.py): one row of
sweep_rows.py becomes a small model with trainable weights before and after the layer,

    inputs -> Dense (one per input, named pre<i>) -> the layer -> Flatten (each output)
           -> [Concatenate] -> Dense(2, name=post) -> mse

written once in .kdl and once with Keras 3 layers, trained 3 steps on one batch of 4 by
Keras's `train_on_batch` and by ktrans's training model (built by `build_training_model`,
run in onnxruntime), from the same initial weights. Both training graphs ktrans writes
(the step and the evaluation model) are built, which runs onnx's full checker on them,
and the step's parameters and buffers must equal Keras's after every step, its loss
Keras's logged one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

LR = 0.1
BATCH = 4
STEPS = 3
OUT_UNITS = 2


@dataclass(frozen=True)
class Row:
    """One training case of a catalogue layer.

    `call`: the layer in .kdl, called on the tensors before it (`LSTM(4)`). Its Keras twin
    is the same text read as Python (`keras_twin`) unless `keras` gives one:
    `fn(keras, fmt, tensors)` returning the layer's outputs.
    `shapes`: the layer's input shapes without the batch, one per input (`?`: dynamic,
    fed as 5); `fmt`: the model's data_format; `outputs`: how many tensors the call
    returns; `dtype`: the model inputs' dtype; `direct`: the layer takes the model inputs
    themselves (integer ids, or a float dtype other than float32) instead of a Dense of
    them; `vocab`, `low`: ids are drawn from [low[i], vocab) (low: 0 by default);
    `pre`: .kdl layers between the inputs' Dense (or the ids) and the layer, read as
    Keras the same way (a channels-first Conv2D, a masking Embedding); `post`: .kdl layers
    after it, read as Keras too (an Embedding of integer outputs); `random`: how
    Keras gets ktrans's random draws (`replay` in test_catalogue_training); `tol`: (rtol, atol);
    `id`: the test id (default: from the call)."""

    call: str
    shapes: tuple = ((5, 3),)
    fmt: str = "channels_last"
    outputs: int = 1
    dtype: str = "float32"
    direct: bool = False
    vocab: int = 0
    low: tuple = ()
    pre: tuple = ()
    post: tuple = ()
    keras: object = None
    random: str = ""
    tol: tuple = (1e-4, 1e-5)
    id: str = ""

    @property
    def layer(self) -> str:
        """The catalogue layer the row trains: the call's class."""
        return self.call.split("(")[0]

    @property
    def test_id(self) -> str:
        if self.id:
            return self.id
        parts = [*self.pre, self.call, *self.post]
        if self.fmt != "channels_last":
            parts.append("cf")
        if self.dtype != "float32":
            parts.append(self.dtype)
        parts.append("+".join("x".join(str(d) for d in shape) for shape in self.shapes))
        return "-".join(parts)

    @property
    def takes_inputs(self) -> bool:
        return self.direct or self.dtype.startswith(("int", "uint"))


class _KerasNames(dict):
    """What a .kdl call's names mean read as Python: Keras layers (given `data_format`
    where they take one and the call does not), true/false/none, and any other bare name
    a string (`padding=same`)."""

    def __init__(self, keras, fmt: str) -> None:
        super().__init__()
        self.keras, self.fmt = keras, fmt

    def __missing__(self, name: str):
        import inspect

        constants = {"true": True, "false": False, "none": None}
        if name in constants:
            return constants[name]
        cls = getattr(self.keras.layers, name, None)
        if not (isinstance(cls, type) and name[:1].isupper()):
            return name
        takes_format = "data_format" in inspect.signature(cls.__init__).parameters

        def make(*args, **kwargs):
            args = [_tuples(a) for a in args]
            kwargs = {k: _tuples(v) for k, v in kwargs.items()}
            if takes_format:
                kwargs.setdefault("data_format", self.fmt)
            return cls(*args, **kwargs)

        return make


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def keras_twin(call: str, keras, fmt: str):
    """The Keras layer a .kdl layer call reads as: `Conv2D(4, [3, 2], padding=same)` is
    `keras.layers.Conv2D(4, (3, 2), padding="same", data_format=fmt)`."""
    return eval(call, {"__builtins__": {}}, _KerasNames(keras, fmt))


FED_LENGTH = 5  # what a `?` axis is fed


def _dims(shape) -> str:
    return ", ".join(str(d) for d in shape)


def _source_shape(row: Row, shape) -> tuple:
    """The model input's shape: the layer's (or the ids'), or with a Dense before the
    layer, 3 features that the Dense maps to the layer's last axis."""
    return tuple(shape) if row.takes_inputs else (*shape[:-1], 3)


def kdl_source(row: Row) -> str:
    """The row's model and train block in .kdl."""
    lines = [f"model M(data_format={row.fmt}) {{"]
    args = []
    for i, shape in enumerate(row.shapes):
        lines.append(f"    input x{i}: {row.dtype}[{_dims(_source_shape(row, shape))}]")
        value = f"x{i}" if row.takes_inputs else f"Dense({shape[-1]}, name=pre{i})(x{i})"
        for kdl in row.pre:
            value = f"{kdl}({value})"
        lines.append(f"    p{i} = {value}")
        args.append(f"p{i}")
    outs = [f"y{j}" for j in range(row.outputs)]
    lines.append(f"    {', '.join(outs)} = {row.call}({', '.join(args)})")
    for kdl in row.post:
        lines += [f"    {o} = {kdl}({o})" for o in outs]
    flat = [f"Flatten()({o})" for o in outs]
    joined = flat[0] if len(flat) == 1 else f"Concatenate()({', '.join(flat)})"
    lines.append(f"    output out = Dense({OUT_UNITS}, name=post)({joined})")
    lines.append("}")
    lines.append(f"train M {{\n    loss = mse\n    optimizer = SGD(learning_rate={LR})\n}}")
    return "\n".join(lines) + "\n"


def keras_model(row: Row, keras):
    """The row's model in Keras 3."""
    layers = keras.layers
    fmt = row.fmt
    inputs, values = [], []
    for i, shape in enumerate(row.shapes):
        source = tuple(None if d == "?" else d for d in _source_shape(row, shape))
        inp = keras.Input(source, dtype=row.dtype)
        inputs.append(inp)
        value = inp if row.takes_inputs else layers.Dense(shape[-1], name=f"pre{i}")(inp)
        for kdl in row.pre:
            value = keras_twin(kdl, keras, fmt)(value)
        values.append(value)
    if row.keras is not None:
        outs = row.keras(keras, fmt, values)
    else:
        outs = keras_twin(row.call, keras, fmt)(values if len(values) > 1 else values[0])
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    assert len(outs) == row.outputs, (row.call, len(outs))
    for kdl in row.post:
        outs = [keras_twin(kdl, keras, fmt)(o) for o in outs]
    flat = [layers.Flatten(data_format=fmt)(o) for o in outs]
    joined = flat[0] if len(flat) == 1 else layers.Concatenate()(flat)
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0], layers.Dense(OUT_UNITS, name="post")(joined)
    )


def batch(row: Row, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Inputs (x0, x1, ...) and mse targets for one batch."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i, shape in enumerate(row.shapes):
        shape = tuple(FED_LENGTH if d == "?" else d for d in _source_shape(row, shape))
        if row.dtype.startswith(("int", "uint")):
            low = row.low[i] if row.low else 0
            ids = rng.integers(low, row.vocab, size=(BATCH, *shape))
            feeds[f"x{i}"] = ids.astype(row.dtype)
        else:
            feeds[f"x{i}"] = rng.normal(size=(BATCH, *shape)).astype(_numpy_dtype(row.dtype))
    return feeds, rng.normal(size=(BATCH, OUT_UNITS)).astype(np.float32)


def _numpy_dtype(dtype: str):
    if dtype == "bfloat16":  # numpy has none: ml_dtypes' (onnx depends on it)
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def for_onnxruntime(value: np.ndarray):
    """onnxruntime takes bfloat16 only as an OrtValue of the raw bits."""
    if value.dtype.name != "bfloat16":
        return value
    from onnx import TensorProto
    from onnxruntime import OrtValue

    return OrtValue.ortvalue_from_numpy_with_onnx_type(value.view(np.uint16), TensorProto.BFLOAT16)


def for_keras(value: np.ndarray):
    """Keras (torch backend) takes bfloat16 as a torch tensor."""
    if value.dtype.name != "bfloat16":
        return value
    import torch

    return torch.from_numpy(value.astype(np.float32)).to(torch.bfloat16)


def pair_layers(graph, km) -> list[tuple]:
    """(ktrans layer, Keras layer) for every layer with weights: `pre<i>` and `post` by
    name, the others (the layer under test, layers of `pre`) in order."""
    ours = [layer for layer in graph.layers if layer.weights]
    theirs = [layer for layer in km.layers if layer.weights]
    named = {layer.name: layer for layer in theirs}
    pairs = [(m, named[m.name]) for m in ours if m.name in named]
    rest_ours = [m for m in ours if m.name not in named]
    paired = {id(k) for _, k in pairs}
    rest_theirs = [k for k in theirs if id(k) not in paired]
    assert len(rest_ours) == len(rest_theirs), (rest_ours, [k.name for k in rest_theirs])
    return pairs + list(zip(rest_ours, rest_theirs))


def keras_layout(pairs) -> dict:
    out = {}
    for mine, kl in pairs:
        assert len(mine.weights) == len(kl.weights), (mine.name, [w.path for w in kl.weights])
        out[mine.name] = {w.name: np.asarray(v.numpy()) for w, v in zip(mine.weights, kl.weights)}
    return out


def onnx_layout(graph, weights: dict) -> dict[str, np.ndarray]:
    """Keras-layout weights as the training model's state names them (ONNX layout)."""
    from onnx import numpy_helper

    from transpiler.emit.onnx import build_model

    proto = build_model(graph, weights=weights)
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def load_graph(kdl: str, tmp_path):
    from transpiler.graph import load

    path = tmp_path / "model.kdl"
    path.write_text(kdl)
    _, graphs = load(str(path))
    return next(iter(graphs.values()))


def run_ktrans(tm, feeds: dict, target: np.ndarray, steps: int = STEPS) -> list[dict]:
    """`steps` steps of ktrans's training model on one batch; each step's outputs."""
    from transpiler.emit.train.model import LOSS_OUTPUT, LR_INPUT, STEP_INPUT
    from transpiler.runtime.session import create_session

    session = create_session(tm.proto, threads=1)  # tiny graphs: threads only wait
    names = [o.name for o in session.get_outputs()]
    state = {**tm.params, **tm.buffers, **tm.slots}
    history = []
    for step in range(steps):
        run = {**{k: for_onnxruntime(v) for k, v in feeds.items()}, "target:out": target, **state}
        run[STEP_INPUT] = np.array(step, np.int64)
        run[LR_INPUT] = np.array(LR, np.float32)
        out = dict(zip(names, session.run(None, run)))
        out["loss"] = out[LOSS_OUTPUT]
        history.append(out)
        state = {k: out[f"new:{k}"] for k in state}
    return history


def train_row(row: Row, tmp_path, keras, before_keras_step=None, seed: int = 3):
    """Trains the row's model in both; returns what was compared (see `assert_same`)."""
    from transpiler.emit.code.train_eval import build_eval_model
    from transpiler.emit.onnx import initial_weights
    from transpiler.emit.train.model import build_training_model

    graph = load_graph(kdl_source(row), tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=seed)
    randomize_statistics(graph, weights, seed)
    km = keras_model(row, keras)
    pairs = pair_layers(graph, km)
    for mine, kl in pairs:
        for w, variable in zip(mine.weights, kl.weights):
            variable.assign(weights[mine.name][w.name])
    km.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    feeds, target = batch(row)
    xs = [for_keras(feeds[f"x{i}"]) for i in range(len(row.shapes))]
    keras_losses, expected = [], []
    for step in range(STEPS):
        if before_keras_step is not None:
            before_keras_step(km, graph, step)
        logs = km.train_on_batch(xs if len(xs) > 1 else xs[0], target, return_dict=True)
        keras_losses.append(float(logs["loss"]))
        expected.append(onnx_layout(graph, keras_layout(pairs)))
    # both builders run onnx's full checker on what they build (graph_errors.check_onnx)
    tm = build_training_model(graph, config, weights=weights)
    build_eval_model(graph, config, weights)
    history = run_ktrans(tm, feeds, target)
    return SimpleNamespace(
        graph=graph, tm=tm, km=km, history=history, keras_losses=keras_losses, expected=expected
    )


def randomize_statistics(graph, weights: dict, seed: int) -> None:
    """Moving statistics away from 0 and 1 (their initial values hide layout bugs)."""
    rng = np.random.default_rng(seed)
    for layer in graph.layers:
        for name, value in weights[layer.name].items():
            if name.endswith("moving_variance"):
                weights[layer.name][name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
            elif name.endswith("moving_mean"):
                weights[layer.name][name] = rng.normal(0, 0.3, value.shape).astype(np.float32)


def assert_same(run, rtol: float, atol: float) -> None:
    """Every step: ktrans's parameters and buffers (the moving statistics) equal Keras's
    (within float32 rounding, scaled to each tensor's size), its loss Keras's."""
    state = [*run.tm.params, *run.tm.buffers]
    assert state, "the model has no weights"
    for i, (out, expected) in enumerate(zip(run.history, run.expected)):
        np.testing.assert_allclose(
            out["loss"], run.keras_losses[i], rtol=rtol, err_msg=f"loss of step {i + 1}"
        )
        for name in state:
            assert name in expected, f"{name} is not a weight of the inference model"
            value = expected[name]
            scale = max(1.0, float(np.max(np.abs(value)))) if value.size else 1.0
            np.testing.assert_allclose(
                out[f"new:{name}"],
                value,
                rtol=rtol,
                atol=atol * scale,
                err_msg=f"{name} after step {i + 1}",
            )


def training_outputs(graph, feeds: dict, step: int) -> list[np.ndarray]:
    """The model's outputs in training mode (Dropout and noise active) at `step`, with
    its initial weights."""
    from onnx import TensorProto, helper

    from transpiler.emit.onnx import initial_weights
    from transpiler.emit.onnx.builder import OpBuilder, make_model
    from transpiler.emit.onnx.context import LowerContext
    from transpiler.emit.onnx.model import value_info
    from transpiler.emit.onnx.tensors import LTensor
    from transpiler.emit.train.model import STEP_INPUT
    from transpiler.layers.masking import lower_layer
    from transpiler.runtime.session import create_session

    b = OpBuilder()
    ctx = LowerContext(b, initial_weights(graph, 0), training=True)
    ctx.step_input = STEP_INPUT
    values = {id(v): LTensor(b.unique(v.name), v.type) for v in graph.inputs}
    for node in graph.nodes:
        ctx.layer = node.layer
        b.scope = node.outputs[0].name.split(":")[0]
        outs = lower_layer(ctx, node.layer, [values[id(v)] for v in node.inputs])
        values.update((id(v), t) for v, t in zip(node.outputs, outs))
    b.scope = ""
    outputs = []
    for name, v in graph.outputs.items():
        b.nodes.append(helper.make_node("Identity", [ctx.logical(values[id(v)]).name], [name]))
        outputs.append(value_info(name, v.type))
    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    inputs.append(helper.make_tensor_value_info(STEP_INPUT, TensorProto.INT64, []))
    params = {n: array for n, (array, _, _) in ctx.params.items()}
    for name, array in params.items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    proto = make_model(
        helper.make_graph(b.nodes, "forward", inputs, outputs, b.tensor_protos()), {}
    )
    session = create_session(proto)
    return session.run(None, {**feeds, **params, STEP_INPUT: np.array(step, np.int64)})
