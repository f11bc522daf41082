"""Every catalogue layer trains, and trains as Keras 3 does (issue 10, section 1).

For each row of the sweep table (sweep_rows.py, sweep_rows_more.py: the argument
combinations, ranks and data formats of the lowering tests), a small model with trainable
weights before and after the layer trains 3 SGD steps on one batch in ktrans (the training
model, built by `build_training_model` and run in onnxruntime) and in Keras
(`train_on_batch`), from the same weights: parameters, moving statistics and the loss
agree after every step, and the training and evaluation graphs pass onnx's full checker.
Random layers are compared with their rate at 0 and with Keras replaying ktrans's draws;
their training-mode statistics are checked separately. Float inputs other than float32
(float64, float16, bfloat16: Keras casts them to float32 in every layer) train the layer
taking them directly; integer ids (int32, int64, int8, uint8) train Embedding.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.emit.train.sweep_harness import assert_same, train_row
from tests.emit.train.sweep_rows import ACTIVATION_LAYERS, CONVOLUTIONS, CORE, POOLING, RESHAPING
from tests.emit.train.sweep_rows_more import ATTENTION, MASKED, MERGING, NORMALIZATION, RECURRENT
from tests.emit.train.test_recurrent_training import counter_uniform
from transpiler.layers import LAYERS

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Keras steps on tiny models: torch's thread pool costs more than it gives (2.5x
    the wall time on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ROWS = [
    *CORE,
    *ACTIVATION_LAYERS,
    *CONVOLUTIONS,
    *POOLING,
    *RESHAPING,
    *MERGING,
    *NORMALIZATION,
    *RECURRENT,
    *ATTENTION,
    *MASKED,
]


#: Keras computes these in their input's precision (autocast=False), so on half-precision
#: inputs Keras rounds where ktrans, computing in float32, does not: a tolerance at the
#: input's precision for them
HALF_PRECISION_IN_KERAS = {"LayerNormalization", "GroupNormalization"}
HALF_TOLERANCE = {"float16": (1e-3, 1e-4), "bfloat16": (1e-2, 1e-3)}


def _float_rows() -> list:
    """Each layer that takes float tensors once more, on float64, float16 and bfloat16
    model inputs taken directly (its first plain row)."""
    out, seen = [], set()
    for row in ROWS:
        if row.layer in seen or row.takes_inputs or row.pre or row.random:
            continue
        seen.add(row.layer)
        for dtype in ("float64", "float16", "bfloat16"):
            tol = row.tol
            if row.layer in HALF_PRECISION_IN_KERAS:
                tol = HALF_TOLERANCE.get(dtype, tol)
            out.append(dataclasses.replace(row, dtype=dtype, direct=True, tol=tol))
    return out


FLOAT_ROWS = _float_rows()


#: layers that take integer tensors (they move or combine them; test_lower_dtypes.py
#: checks every integer and bool dtype against Keras): integer ids through the layer
#: into an Embedding, whose gradient is all the training there is
INTEGER_PATHS = {
    "Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D",
    "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Concatenate", "Add",
    "Multiply", "Maximum", "Minimum",
}  # fmt: skip


def _integer_rows() -> list:
    out, seen = [], set()
    for row in ROWS:
        if row.layer not in INTEGER_PATHS or row.layer in seen or row.pre or "bilinear" in row.call:
            continue
        seen.add(row.layer)
        for dtype in ("int32", "int64"):
            post = ("Embedding(40, 2)",)  # ids below 6: sums below 12, products below 36
            out.append(dataclasses.replace(row, dtype=dtype, direct=True, vocab=6, post=post))
    return out


INTEGER_ROWS = _integer_rows()


def test_every_catalogue_layer_has_rows():
    covered = {row.layer for row in ROWS}
    assert not set(LAYERS) - covered, (
        f"catalogue layers without sweep rows: {sorted(set(LAYERS) - covered)}"
    )
    assert not covered - set(LAYERS), sorted(covered - set(LAYERS))
    ids = [row.test_id for row in ROWS + FLOAT_ROWS + INTEGER_ROWS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


#: layers that take integers but give what an Embedding cannot take (floats, negative
#: ids): test_lower_dtypes.py covers them; Embedding's own rows cover its ids
INTEGER_ELSEWHERE = {"Average", "Subtract", "Embedding"}


def test_every_layer_taking_integers_has_integer_rows(tmp_path):
    """Probes the catalogue: a layer whose check accepts int32 inputs trains on them."""
    from tests.emit.train.sweep_harness import kdl_source, load_graph
    from transpiler.errors import KdlErrors

    takes_integers = set()
    for layer in sorted({row.layer for row in ROWS}):
        row = next(r for r in ROWS if r.layer == layer and not r.pre)
        probe = dataclasses.replace(row, dtype="int32", direct=True, vocab=6)
        try:
            load_graph(kdl_source(probe).split("    output out")[0] + "}\n", tmp_path)
        except KdlErrors:
            continue
        takes_integers.add(layer)
    assert takes_integers - INTEGER_ELSEWHERE == INTEGER_PATHS
    assert {row.layer for row in INTEGER_ROWS} == INTEGER_PATHS


def test_every_float_layer_has_rows_for_every_float_dtype():
    from transpiler.graph.types import FLOAT_DTYPES

    takes_floats = {row.layer for row in ROWS if not row.takes_inputs}
    for dtype in FLOAT_DTYPES:
        rows = ROWS if dtype == "float32" else FLOAT_ROWS
        assert takes_floats == {row.layer for row in rows if row.dtype == dtype}, dtype


# ------------------------------------------------------------------ ktrans's draws in Keras


def _random_layer(km, graph):
    ours = next(layer for layer in graph.layers if layer.has_training_mode)
    theirs = next(layer for layer in km.layers if type(layer).__name__ == ours.keras_class())
    return ours, theirs


def _dropout_mask(ours, shape, step):
    """The mask ktrans's training step multiplies by: drawn on the noise shape (Keras's
    noise_shape, or whole channels for spatial dropout), kept where u >= rate."""
    rank = len(shape)
    noise = list(shape)
    if ours.keras_class() == "SpatialDropout1D":
        noise[1] = 1
    elif ours.keras_class() == "SpatialDropout2D":
        for axis in (2, 3) if ours.data_format == "channels_first" else (1, 2):
            noise[axis] = 1
    elif ours.noise_shape is not None:
        noise = [shape[i] if d is None else d for i, d in enumerate(ours.noise_shape)]
    assert len(noise) == rank
    u = counter_uniform(tuple(noise), f"{ours.name}#0", step)
    return (u >= np.float32(ours.rate)).astype(np.float32) / np.float32(1 - ours.rate)


def _gaussian_noise(ours, shape, step):
    """ktrans's Box-Muller noise from its two uniform streams."""
    u1 = np.float32(1.0) - counter_uniform(shape, f"{ours.name}#0", step)
    u2 = counter_uniform(shape, f"{ours.name}#1", step)
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    return radius * np.cos(u2 * np.float32(2 * np.pi)) * np.float32(ours.stddev)


def _attention_dropout(ours, shape, step):
    """MultiHeadAttention's dropout mask on its (batch, heads, query, key) probabilities."""
    u = counter_uniform(shape, f"{ours.name}#0", step)
    return (u >= np.float32(ours.dropout)).astype(np.float32) / np.float32(1 - ours.dropout)


def replay(kind: str):
    """A hook that makes the Keras layer apply ktrans's draws of this step: `dropout`
    (Dropout and spatial dropout), `gaussian` (GaussianNoise), `attention`
    (MultiHeadAttention's dropout layer)."""

    def before_step(km, graph, step):
        ours, theirs = _random_layer(km, graph)
        if kind == "attention":
            theirs = theirs._dropout_layer

        def call(inputs, training=None, **kwargs):
            shape = tuple(inputs.shape)
            if kind == "dropout":
                return inputs * keras.ops.convert_to_tensor(_dropout_mask(ours, shape, step))
            if kind == "attention":
                mask = _attention_dropout(ours, shape, step)
                return inputs * keras.ops.convert_to_tensor(mask)
            return inputs + keras.ops.convert_to_tensor(_gaussian_noise(ours, shape, step))

        theirs.call = call

    return before_step


# ------------------------------------------------------------------ the sweep


def _id(row):
    return row.test_id


@pytest.mark.parametrize("row", ROWS + FLOAT_ROWS + INTEGER_ROWS, ids=_id)
def test_layer_trains_like_keras(tmp_path, row):
    run = train_row(row, tmp_path, keras, replay(row.random) if row.random else None)
    assert_same(run, *row.tol)


# ------------------------------------------------------------------ training-mode statistics


def _noisy(tmp_path, call: str, shape: tuple, fmt: str = "channels_last"):
    from tests.emit.train.sweep_harness import load_graph

    dims = ", ".join(map(str, shape))
    return load_graph(
        f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {call}\n}}\n", tmp_path
    )


def _draws(graph, x, steps=(0, 1)):
    from tests.emit.train.sweep_harness import training_outputs

    return [training_outputs(graph, {"x": x}, step)[0] for step in steps]


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_zeroes_a_rate_of_the_inputs_and_scales_the_rest(tmp_path, rate):
    x = np.ones((64, 50), np.float32)
    first, second = _draws(_noisy(tmp_path, f"Dropout({rate})", (50,)), x)
    for y in (first, second):
        assert set(np.unique(y)) == {0.0, np.float32(1 / (1 - rate))}
        kept = float(np.mean(y > 0))
        assert abs(kept - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / y.size)
    assert not np.array_equal(first, second)  # a new mask every step


def test_dropout_noise_shape_shares_the_mask_along_size_one_axes(tmp_path):
    x = np.ones((32, 6, 20), np.float32)
    (y,) = _draws(_noisy(tmp_path, "Dropout(0.5, noise_shape=[none, 1, 20])", (6, 20)), x, (3,))
    assert (y == y[:, :1, :]).all()  # one mask for every step of a sample
    assert 0.35 < np.mean(y[:, 0, :] > 0) < 0.65


@pytest.mark.parametrize(
    ("call", "shape", "fmt", "channel_axis"),
    [
        ("SpatialDropout1D(0.5)", (7, 16), "channels_last", 2),
        ("SpatialDropout2D(0.5)", (3, 4, 16), "channels_last", 3),
        ("SpatialDropout2D(0.5)", (16, 3, 4), "channels_first", 1),
    ],
)
def test_spatial_dropout_drops_whole_channels(tmp_path, call, shape, fmt, channel_axis):
    x = np.ones((32, *shape), np.float32)
    (y,) = _draws(_noisy(tmp_path, call, shape, fmt), x, (2,))
    reduce = tuple(a for a in range(1, y.ndim) if a != channel_axis)
    per_channel = y.max(axis=reduce)
    assert (y.min(axis=reduce) == per_channel).all()  # all or nothing per (sample, channel)
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    assert 0.4 < np.mean(per_channel > 0) < 0.6


def test_gaussian_noise_has_the_stddev_and_changes_every_step(tmp_path):
    x = np.full((200, 50), 3.0, np.float32)
    first, second = _draws(_noisy(tmp_path, "GaussianNoise(0.4)", (50,)), x)
    for y in (first, second):
        noise = y - 3.0
        assert abs(noise.mean()) < 4 * 0.4 / np.sqrt(noise.size)
        assert abs(noise.std() - 0.4) < 0.02
    assert not np.array_equal(first, second)
    again = _draws(_noisy(tmp_path, "GaussianNoise(0.4)", (50,)), x, (0,))[0]
    np.testing.assert_array_equal(again, first)  # a step's draws are reproducible
