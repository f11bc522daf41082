# ruff: noqa: E501  (config tables: one layer per line)
"""Reading Keras files: the three formats, and hostile input. A .keras archive is checked
from its central directory before anything is read (paths that leave the archive, sizes,
inflation); HDF5 objects are reached through hard links only, and virtual datasets,
external storage and unknown filters are refused."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest

from transpiler.errors import KdlErrors
from transpiler.importer import import_keras, sources

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def small():
    x = keras.Input((6,), name="features")
    h = layers.Dense(5, activation="relu", name="hidden")(x)
    model = keras.Model(x, layers.Dense(3, name="logits")(h), name="small")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.weights])
    return model


def error_of(path) -> str:
    with pytest.raises(KdlErrors) as err:
        import_keras(path)
    return str(err.value.errors[0].message)


# ---------------------------------------------------------------- the formats


def test_keras_json_and_get_config_give_the_same_file(small, tmp_path):
    small.save(str(tmp_path / "small.keras"))
    (tmp_path / "to_json.json").write_text(small.to_json())
    (tmp_path / "config.json").write_text(json.dumps(small.get_config()))
    texts = [
        import_keras(tmp_path / n).text.split("\n\n", 1)[1]
        for n in ("small.keras", "to_json.json", "config.json")
    ]
    assert texts[0] == texts[1] == texts[2]
    assert "input features: float32[6]" in texts[0]


def test_sequential_get_config(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2, name="d")], name="seq")
    (tmp_path / "seq.json").write_text(json.dumps(model.get_config()))
    text = import_keras(tmp_path / "seq.json").text
    assert "model seq {" in text and "Dense(2, name=d)" in text


def test_whole_model_h5_with_weights(small, tmp_path):
    """Keras's legacy whole-model .h5 (model_config + model_weights): the model, and the
    weights the build reads, give Keras's outputs."""
    from transpiler.emit.onnx import build_model
    from transpiler.emit.onnx.weights import assign, load_weights
    from transpiler.runtime.session import create_session

    path = tmp_path / "small.h5"
    small.save(str(path))
    imported = import_keras(path)
    arrays = imported.weights()
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    expected = small.predict(x, verbose=0)
    for weights in (assign(arrays, imported.graph, "npz"), load_weights(path, imported.graph)):
        (out,) = create_session(build_model(imported.graph, weights=weights)).run(
            None, {"features": x}
        )
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_not_a_keras_file(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(b"\x00\x01 not a model")
    assert "not a Keras model file" in error_of(path)
    assert "no such file" in error_of(tmp_path / "missing.keras")


def test_a_weights_file_is_not_a_model(small, tmp_path):
    path = tmp_path / "small.weights.h5"
    small.save_weights(str(path))
    with pytest.raises(KdlErrors) as err:
        import_keras(path)
    assert "has no model_config" in err.value.errors[0].message
    assert "build --weights" in err.value.errors[0].hint


# ---------------------------------------------------------------- hostile archives


def archive(tmp_path, members: dict, compress=zipfile.ZIP_STORED):
    path = tmp_path / "hostile.keras"
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd", "a/../../b", "c:\\x", "C:/x"])
def test_member_paths_that_leave_the_archive_are_refused(tmp_path, name):
    path = archive(tmp_path, {"config.json": "{}", name: "x"})
    assert "refusing the archive member" in error_of(path)


def test_sizes_are_checked_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CONFIG_LIMIT", 100)
    path = archive(tmp_path, {"config.json": json.dumps({"pad": "x" * 200})})
    assert "config.json is 2" in error_of(path) and "at most 100 are read" in error_of(path)


def test_a_member_that_inflates_too_much_is_refused(tmp_path):
    path = archive(tmp_path, {"config.json": " " * 10_000_000}, zipfile.ZIP_DEFLATED)
    assert "inflates too much" in error_of(path)


def test_bad_and_deep_json(tmp_path):
    assert "not valid JSON" in error_of(archive(tmp_path, {"config.json": "{oops"}))
    deep = "[" * 5000 + "]" * 5000
    assert "nested too deeply" in error_of(archive(tmp_path, {"config.json": deep}))
    assert "no config.json" in error_of(archive(tmp_path, {"metadata.json": "{}"}))


# ---------------------------------------------------------------- hostile HDF5


def whole_model_h5(small, tmp_path, tamper) -> str:
    path = tmp_path / "tampered.h5"
    small.save(str(path))
    with h5py.File(path, "a") as f:
        tamper(f, tmp_path)
    return path


def _external_link(f, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["secret"] = np.zeros(3, np.float32)
    group = f["model_weights/hidden/hidden"]
    del group["kernel"]
    group["kernel"] = h5py.ExternalLink(str(other), "/secret")


def _soft_link(f, tmp_path):
    group = f["model_weights/hidden/hidden"]
    del group["kernel"]
    group["kernel"] = h5py.SoftLink("/model_weights/logits/logits/kernel")


def _virtual(f, tmp_path):
    other = tmp_path / "source.h5"
    with h5py.File(other, "w") as g:
        g["data"] = np.zeros((6, 5), np.float32)
    layout = h5py.VirtualLayout(shape=(6, 5), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(6, 5))
    group = f["model_weights/hidden/hidden"]
    del group["kernel"]
    group.create_virtual_dataset("kernel", layout)


def _external_storage(f, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros((6, 5), np.float32).tobytes())
    group = f["model_weights/hidden/hidden"]
    del group["kernel"]
    group.create_dataset("kernel", shape=(6, 5), dtype="f4", external=[(str(raw), 0, 120)])


@pytest.mark.parametrize(
    ("tamper", "fragment"),
    [
        (_external_link, "it is a ExternalLink, which may point into another file"),
        (_soft_link, "it is a SoftLink"),
        (_virtual, "a virtual dataset"),
        (_external_storage, "stored in external files"),
    ],
    ids=["external-link", "soft-link", "virtual", "external-storage"],
)
def test_hdf5_that_points_elsewhere_is_refused(small, tmp_path, tamper, fragment):
    path = whole_model_h5(small, tmp_path, tamper)
    imported = import_keras(path)  # the config is fine; the weights are not
    with pytest.raises(KdlErrors) as err:
        imported.weights()
    assert fragment in err.value.errors[0].message


def test_a_keras_2_config(tmp_path):
    """tf.keras / Keras 2 JSON: inbound nodes as [layer, node, index, kwargs] lists,
    batch_input_shape, class name Model, serialized initializers without modules."""
    config = {
        "class_name": "Model",
        "keras_version": "2.15.0",
        "config": {
            "name": "legacy",
            "layers": [
                {"class_name": "InputLayer", "name": "input_1",
                 "config": {"batch_input_shape": [None, 6], "dtype": "float32", "name": "input_1",
                            "sparse": False, "ragged": False}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "dense",
                 "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 4,
                            "activation": "relu", "use_bias": True,
                            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                            "bias_initializer": {"class_name": "Zeros", "config": {}},
                            "kernel_regularizer": None, "bias_regularizer": None,
                            "activity_regularizer": None, "kernel_constraint": None,
                            "bias_constraint": None},
                 "inbound_nodes": [[["input_1", 0, 0, {}]]]},
                {"class_name": "Dense", "name": "dense_1",
                 "config": {"name": "dense_1", "units": 2},
                 "inbound_nodes": [[["dense", 0, 0, {}]]]},
                {"class_name": "Add", "name": "add",
                 "config": {"name": "add"},
                 "inbound_nodes": [[["dense_1", 0, 0, {}], ["dense_1", 0, 0, {}]]]},
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["add", 0, 0]],
        },
    }  # fmt: skip
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(config))
    text = import_keras(path).text
    assert "from legacy.json (Keras 2.15.0):" in text
    assert "    dense_1 = input_1 |> Dense(4, activation=relu) |> Dense(2)\n" in text
    assert "    Add()(dense_1, dense_1)\n}" in text
