"""Initial weights are drawn as Keras 3 draws them: same distribution, scale and fans."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.emit.onnx.initializers import initialize
from transpiler.layers.initializers import initializer

keras = pytest.importorskip("keras")

CASES = [
    ("glorot_uniform", {}, (3, 3, 64, 32)),
    ("glorot_normal", {}, (256, 96)),
    ("he_uniform", {}, (5, 5, 32, 16)),
    ("he_normal", {}, (256, 96)),
    ("lecun_uniform", {}, (256, 64)),
    ("lecun_normal", {}, (3, 3, 32, 64)),
    ("random_uniform", {"minval": -0.2, "maxval": 0.1}, (200, 100)),
    ("random_normal", {"mean": 0.5, "stddev": 0.02}, (200, 100)),
    ("truncated_normal", {"stddev": 0.3}, (200, 100)),
    (
        "variance_scaling",
        {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"},
        (3, 3, 8, 40),
    ),
    ("orthogonal", {"gain": 1.5}, (64, 32)),
    ("constant", {"value": 0.25}, (7, 3)),
    ("identity", {"gain": 2.0}, (5, 5)),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES, ids=[c[0] for c in CASES])
def test_same_distribution_as_keras(name, kwargs, shape):
    """Samples of >= 9,000 values: the standard deviations of the two samples agree to
    about 1% by chance alone, so the 5% bound below fails only for a wrong scale."""
    from transpiler.layers.args import Spec

    keras.utils.set_random_seed(0)
    ours = initialize(
        initializer(Spec(name, (), tuple(kwargs.items()))), shape, np.random.default_rng(0)
    )
    theirs = np.asarray(keras.initializers.get({"class_name": name, "config": kwargs})(shape))
    assert ours.shape == shape and ours.dtype == np.float32
    scale = max(float(np.std(theirs)), 1e-3)
    assert abs(ours.mean() - theirs.mean()) < 0.1 * scale + 1e-6
    assert abs(ours.std() - theirs.std()) < 0.05 * scale + 1e-6
    bounded = name.endswith("uniform") or name.startswith("truncated") or "normal" in name
    if bounded and name != "random_normal":  # truncated draws and uniform ones: same support
        assert ours.min() >= theirs.min() - 0.15 * scale
        assert ours.max() <= theirs.max() + 0.15 * scale
    if name == "orthogonal":
        q = ours / kwargs["gain"]
        np.testing.assert_allclose(q.T @ q, np.eye(shape[1]), atol=1e-4)


def test_fans_follow_the_keras_shape_in_another_layout():
    """A conv kernel drawn straight into ONNX's (out, in, kh, kw) keeps Keras's fans."""
    init = initializer("glorot_uniform")
    keras_shape = (3, 3, 16, 32)
    onnx_shape = (32, 16, 3, 3)
    direct = initialize(init, onnx_shape, np.random.default_rng(0), fan_shape=keras_shape)
    limit = np.sqrt(6 / (3 * 3 * 16 + 3 * 3 * 32))
    assert direct.shape == onnx_shape
    assert direct.max() <= limit and direct.min() >= -limit
    assert abs(direct.std() - limit / np.sqrt(3)) < 0.05 * limit
