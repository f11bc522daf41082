"""The runtime's Keras writers (templates/ktrans_runtime/keras_export.py), against Keras:
an ONNX-layout state -> Keras arrays -> `.weights.h5` loaded into the model of
`codegen --target keras` predicts what the ONNX model with that state predicts (1e-5);
the `.npz` is what `ktrans build --weights` reads; writes are atomic; a missing h5py is
a note, not a traceback; the module needs only numpy to import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from tests.emit.catalogue_models import CASES
from tests.emit.keras_twin import (
    flat,
    keras_model,
    load_graph,
    onnx_outputs,
    predict,
    random_feeds,
    random_weights,
)
from tests.emit.test_codegen_keras import KITCHEN_SINK
from tests.emit.test_codegen_keras_nested import NESTED_BLOCKS
from transpiler.emit.code.keras_export_info import keras_export_info
from transpiler.emit.onnx import build_model
from transpiler.emit.onnx.keras_h5 import read_keras_h5
from transpiler.emit.onnx.weights import load_weights
from transpiler.templates.ktrans_runtime import files, keras_export
from transpiler.templates.ktrans_runtime.errors import WriteError
from transpiler.templates.ktrans_runtime.keras_export import (
    ExportError,
    ExportUnavailable,
    keras_arrays,
    write_keras_archive,
    write_keras_files,
    write_keras_npz,
    write_weights_h5,
)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "templates" / "ktrans_runtime"
MODELS = {
    "sink": KITCHEN_SINK,
    "nested": NESTED_BLOCKS,  # blocks written as nested models: a nested layout
    # its count is in no ONNX tensor: the file carries its value, or Keras cannot load it
    "normalization": CASES["Normalization"],
    **{
        n: (ROOT / "examples" / f"{n}.kdl").read_text()
        for n in ("ticket_triage", "addition_rnn", "toy_resnet", "mnist_cnn")
    },
}


def trained_like_state(graph, recipes, rng):
    """An ONNX-layout state as training leaves it: Keras's initial weights, every value
    moved a little (both ONNX recurrent biases too); and the ONNX model holding it."""
    from transpiler.emit.onnx.model import initial_weights

    proto = build_model(graph, weights=initial_weights(graph, 0))
    names = {part["state"] for recipe in recipes.values() for part in recipe["parts"]}
    state = {}
    for t in proto.graph.initializer:
        if t.name in names:
            a = numpy_helper.to_array(t)
            state[t.name] = (a + rng.normal(0, 0.05, a.shape)).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(state[t.name], t.name))
    return proto, state


@pytest.mark.parametrize("name", list(MODELS))
def test_weights_h5_loads_into_the_keras_model_and_predicts_as_onnx(name, tmp_path):
    program, graph = load_graph(MODELS[name], tmp_path)
    rng = np.random.default_rng(3)
    info = keras_export_info(graph)
    proto, state = trained_like_state(graph, info["recipes"], rng)
    arrays = keras_arrays(state, info["recipes"])
    path = write_weights_h5(arrays, info["weights_h5"], tmp_path / "m.weights.h5")
    model = keras_model(program, graph, tmp_path)
    model.load_weights(str(path))
    feeds = random_feeds(graph, rng, batch=3)
    for got, want in zip(predict(model, graph, feeds), onnx_outputs(proto, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # ktrans reads its own file back: the same arrays
    back = read_keras_h5(path, graph)
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)


def test_keras_npz_is_what_build_weights_reads(tmp_path):
    _, graph = load_graph(MODELS["addition_rnn"], tmp_path)
    arrays = flat(random_weights(graph, np.random.default_rng(0)))
    path = write_keras_npz(arrays, tmp_path / "m.weights.npz")
    loaded = load_weights(path, graph)
    assert flat(loaded).keys() == arrays.keys()
    for key, value in flat(loaded).items():
        np.testing.assert_array_equal(value, arrays[key])


def test_keras_archive_holds_config_metadata_and_weights(tmp_path):
    _, graph = load_graph(MODELS["mnist_cnn"], tmp_path)
    info = keras_export_info(graph)
    arrays = flat(random_weights(graph, np.random.default_rng(0)))
    config = info["keras_config"]
    path = write_keras_archive(arrays, info["weights_h5"], config, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(zf.read("config.json")) == info["keras_config"]
        assert json.loads(zf.read("metadata.json"))["keras_version"].startswith("3")
        (tmp_path / "inner.weights.h5").write_bytes(zf.read("model.weights.h5"))
    back = read_keras_h5(tmp_path / "inner.weights.h5", graph)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)


def test_without_h5py_the_h5_file_is_a_note(tmp_path, monkeypatch):
    _, graph = load_graph(MODELS["mnist_cnn"], tmp_path)
    info = keras_export_info(graph)
    arrays = flat(random_weights(graph, np.random.default_rng(0)))
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` fails
    with pytest.raises(ExportUnavailable, match=r"h5py is not installed \(pip install h5py\)"):
        write_weights_h5(arrays, info["weights_h5"], tmp_path / "m.weights.h5")
    written, notes = write_keras_files(arrays, info, tmp_path, "M")
    assert [p.name for p in written] == ["M.weights.npz"]
    assert notes == ["M.weights.h5 was not written: h5py is not installed (pip install h5py)"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("M", "."))) == [
        "M.weights.npz"
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "m.weights.npz"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    # keras_export writes with the runtime's one atomic_write (files.py)
    assert keras_export.atomic_write is files.atomic_write
    with pytest.raises(WriteError, match="disk full"):
        keras_export.atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.weights.npz"]
    with pytest.raises(ExportError, match="no array for the weight 'dense/kernel'"):
        layout = {"datasets": [["layers/dense/vars/0", "dense/kernel"]], "names": {}}
        write_weights_h5({}, layout, tmp_path / "x.weights.h5")
    assert not (tmp_path / "x.weights.h5").exists()


def test_the_module_imports_with_numpy_alone(tmp_path):
    """A bundle copies ktrans_runtime/ beside its script: importing keras_export there
    loads neither ktrans, nor h5py, onnx, onnxruntime or torch."""
    shutil.copytree(RUNTIME, tmp_path / "ktrans_runtime")
    code = (
        "import sys; import ktrans_runtime.keras_export as k; "
        "bad = [m for m in ('transpiler', 'h5py', 'onnx', 'onnxruntime', 'torch', 'keras') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_recipes_of_a_bundle_describe_every_weight(tmp_path):
    _, graph = load_graph(MODELS["sink"], tmp_path)
    info = keras_export_info(graph)
    keys = {f"{la.name}/{w.name}" for la in graph.layers for w in la.weights or []}
    assert set(info["recipes"]) == keys
    assert {key for _, key in info["weights_h5"]["datasets"]} == keys
    assert info["format"] == keras_export.FORMAT and info["model"] == "Sink"
    json.dumps(info)  # plain JSON data
