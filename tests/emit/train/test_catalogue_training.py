"""Every catalogue layer trains, and trains as Keras 3 does (issue 10, section 1).

For each row of the sweep table (sweep_rows.py, sweep_rows_more.py: the argument
combinations, ranks and data formats of the lowering tests), a small model with trainable
weights before and after the layer trains 3 SGD steps on one batch in ktrans (the training
model, built by `build_training_model` and run in onnxruntime) and in Keras
(`train_on_batch`), from the same weights: parameters, moving statistics and the loss
agree after every step, and the training and evaluation graphs pass onnx's full checker.
Random layers are compared with their rate at 0 and with Keras replaying ktrans's draws;
their training-mode statistics are checked separately. Float inputs other than float32
(which Keras casts to float32 in every layer) train the layer taking them directly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.emit.train.sweep_harness import assert_same, train_row
from tests.emit.train.sweep_rows import ACTIVATION_LAYERS, CONVOLUTIONS, CORE, POOLING, RESHAPING
from tests.emit.train.sweep_rows_more import ATTENTION, MASKED, MERGING, NORMALIZATION, RECURRENT
from transpiler.layers import LAYERS

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

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


def _float_rows() -> list:
    """Each layer that takes float tensors once more, on float64 and float16 model
    inputs taken directly (its first plain row)."""
    out, seen = [], set()
    for row in ROWS:
        if row.layer in seen or row.takes_inputs or row.pre or row.random:
            continue
        seen.add(row.layer)
        for dtype in ("float64", "float16"):
            out.append(dataclasses.replace(row, dtype=dtype, direct=True))
    return out


FLOAT_ROWS = _float_rows()


def test_every_catalogue_layer_has_rows():
    covered = {row.layer for row in ROWS}
    assert not set(LAYERS) - covered, (
        f"catalogue layers without sweep rows: {sorted(set(LAYERS) - covered)}"
    )
    assert not covered - set(LAYERS), sorted(covered - set(LAYERS))
    ids = [row.test_id for row in ROWS + FLOAT_ROWS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_float_layer_has_float64_and_float16_rows():
    takes_floats = {row.layer for row in ROWS if not row.takes_inputs}
    assert takes_floats == {row.layer for row in FLOAT_ROWS}


# ------------------------------------------------------------------ ktrans's draws in Keras


def counter_uniform(shape, name: str, step: int) -> np.ndarray:
    """numpy's copy of transpiler.emit.onnx.random.counter_uniform."""
    import zlib

    from transpiler.emit.onnx import random as r

    with np.errstate(over="ignore"):
        h = np.arange(int(np.prod(shape)), dtype=np.uint64) * np.uint64(r._GOLDEN)
        h = h + np.uint64(step) * np.uint64(r._M2)
        h ^= np.uint64(zlib.crc32(name.encode()) * r._GOLDEN % 2**64)
        for mult in (r._M1, r._M2):
            h ^= h >> np.uint64(33)
            h = h * np.uint64(mult)
        h ^= h >> np.uint64(33)
    u = (h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 2**24)
    return u.reshape(shape)


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


def replay(kind: str):
    """A hook that makes the Keras layer apply ktrans's draws of this step."""

    def before_step(km, graph, step):
        ours, theirs = _random_layer(km, graph)

        def call(inputs, training=None, **kwargs):
            shape = tuple(inputs.shape)
            if kind == "dropout":
                return inputs * keras.ops.convert_to_tensor(_dropout_mask(ours, shape, step))
            return inputs + keras.ops.convert_to_tensor(_gaussian_noise(ours, shape, step))

        theirs.call = call

    return before_step


# ------------------------------------------------------------------ the sweep


def _id(row):
    return row.test_id


@pytest.mark.parametrize("row", ROWS + FLOAT_ROWS, ids=_id)
def test_layer_trains_like_keras(tmp_path, row):
    run = train_row(row, tmp_path, keras, replay(row.random) if row.random else None)
    assert_same(run, *row.tol)
