"""Reshaping layers: ONNX equals Keras 3, alone and after a convolution (whose output is
stored channels-first, so the layout-agnostic ones must map their axes and Flatten,
Reshape and Permute must restore Keras's order)."""

from __future__ import annotations

import pytest

from tests.emit.test_lower_conv import op_count, run_layer

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

CF = "channels_first"


def chain(*made):
    def call(x):
        for layer in made:
            x = layer(x)
        return x

    return call


def conv(f):
    return layers.Conv2D(4, 3, padding="same", data_format=f)


CONV = "Conv2D(4, 3, padding=same)\n "

# (kdl lines, Keras layers factory, input shape without batch, data_format)
CASES = [
    ("Flatten()", lambda f: layers.Flatten(data_format=f), (3, 4, 2), None),
    ("Flatten()", lambda f: layers.Flatten(data_format=f), (3, 4, 2), CF),
    ("Flatten()", lambda f: layers.Flatten(data_format=f), (5, 2), CF),
    (CONV + "Flatten()", lambda f: chain(conv(f), layers.Flatten(data_format=f)), (5, 6, 3), None),
    (CONV + "Flatten()", lambda f: chain(conv(f), layers.Flatten(data_format=f)), (3, 5, 6), CF),
    ("Reshape([6, 4])", lambda f: layers.Reshape((6, 4)), (4, 6), None),
    ("Reshape([-1, 2, 3])", lambda f: layers.Reshape((-1, 2, 3)), (4, 3, 2), None),
    (CONV + "Reshape([-1, 4])", lambda f: chain(conv(f), layers.Reshape((-1, 4))), (5, 6, 3), None),
    ("Permute([2, 1])", lambda f: layers.Permute((2, 1)), (4, 6), None),
    ("Permute([3, 1, 2])", lambda f: layers.Permute((3, 1, 2)), (4, 5, 6), None),
    (
        CONV + "Permute([3, 1, 2])",  # stored (N, C, H, W) is already the permuted order
        lambda f: chain(conv(f), layers.Permute((3, 1, 2))),
        (5, 6, 3),
        None,
    ),
    (
        CONV + "Permute([2, 3, 1])",
        lambda f: chain(conv(f), layers.Permute((2, 3, 1))),
        (5, 6, 3),
        None,
    ),
    ("RepeatVector(3)", lambda f: layers.RepeatVector(3), (5,), None),
    ("ZeroPadding1D()", lambda f: layers.ZeroPadding1D(), (5, 3), None),
    ("ZeroPadding1D([1, 3])", lambda f: layers.ZeroPadding1D((1, 3)), (5, 3), None),
    ("ZeroPadding1D(2)", lambda f: layers.ZeroPadding1D(2, data_format=f), (3, 5), CF),
    (
        "ZeroPadding2D([[1, 2], [0, 3]])",
        lambda f: layers.ZeroPadding2D(((1, 2), (0, 3)), data_format=f),
        (4, 5, 2),
        None,
    ),
    (
        "ZeroPadding2D([2, 1])",
        lambda f: layers.ZeroPadding2D((2, 1), data_format=f),
        (2, 4, 5),
        CF,
    ),
    (
        CONV + "ZeroPadding2D([[0, 1], [2, 0]])",
        lambda f: chain(conv(f), layers.ZeroPadding2D(((0, 1), (2, 0)), data_format=f)),
        (4, 5, 3),
        None,
    ),
    ("Cropping1D([1, 2])", lambda f: layers.Cropping1D((1, 2)), (7, 3), None),
    ("Cropping1D([2, 0])", lambda f: layers.Cropping1D((2, 0)), (7, 3), None),
    (
        "Cropping2D([[1, 0], [2, 1]])",
        lambda f: layers.Cropping2D(((1, 0), (2, 1)), data_format=f),
        (5, 6, 2),
        None,
    ),
    ("Cropping2D(1)", lambda f: layers.Cropping2D(1, data_format=f), (2, 5, 6), CF),
    (
        CONV + "Cropping2D([[0, 2], [1, 1]])",
        lambda f: chain(conv(f), layers.Cropping2D(((0, 2), (1, 1)), data_format=f)),
        (5, 6, 3),
        None,
    ),
    ("UpSampling1D(3)", lambda f: layers.UpSampling1D(3), (4, 3), None),
    ("UpSampling2D([2, 3])", lambda f: layers.UpSampling2D((2, 3), data_format=f), (3, 4, 2), None),
    ("UpSampling2D()", lambda f: layers.UpSampling2D(data_format=f), (2, 3, 4), CF),
    (
        "UpSampling2D([2, 3], interpolation=bilinear)",
        lambda f: layers.UpSampling2D((2, 3), interpolation="bilinear", data_format=f),
        (3, 4, 2),
        None,
    ),
    (
        "UpSampling2D(3, interpolation=bilinear)",
        lambda f: layers.UpSampling2D(3, interpolation="bilinear", data_format=f),
        (2, 4, 3),
        CF,
    ),
    (
        CONV + "UpSampling2D(interpolation=bilinear)",
        lambda f: chain(conv(f), layers.UpSampling2D(interpolation="bilinear", data_format=f)),
        (4, 5, 3),
        None,
    ),
    (
        CONV + "UpSampling2D([3, 2])",
        lambda f: chain(conv(f), layers.UpSampling2D((3, 2), data_format=f)),
        (4, 5, 3),
        None,
    ),
]


def _id(case):
    return f"{case[0].replace(CONV, 'Conv2D-')}-{case[3] or 'channels_last'}"


@pytest.mark.parametrize(("kdl_layer", "make", "shape", "fmt"), CASES, ids=map(_id, CASES))
def test_reshaping_layers_match_keras(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt)


REFERENCE = [
    c
    for c in CASES
    if c[0].startswith(CONV)
    or c[0] in ("RepeatVector(3)", "UpSampling2D(3, interpolation=bilinear)")
]


@pytest.mark.parametrize(("kdl_layer", "make", "shape", "fmt"), REFERENCE, ids=map(_id, REFERENCE))
def test_reshaping_layers_on_the_reference_evaluator(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt, runtime="reference")


@pytest.mark.parametrize(
    ("lines", "transposes"),
    [
        # padding, cropping and upsampling keep the channels-first storage
        (
            "ZeroPadding2D(1)\n Conv2D(4, 3)\n Cropping2D(1)\n UpSampling2D()\n"
            " ZeroPadding2D(1)\n Conv2D(2, 3)",
            2,
        ),
        # the permuted order is the stored order: no Transpose for the Permute
        ("Conv2D(4, 3)\n Permute([3, 1, 2])", 1),
        ("Conv2D(4, 3)\n Flatten()", 2),
    ],
)
def test_layout_agnostic_layers_add_no_transpose(tmp_path, lines, transposes):
    kdl = f"model M {{\n input x: float32[8, 8, 3]\n {lines}\n}}\n"
    assert op_count(tmp_path, kdl, "Transpose") == transposes
