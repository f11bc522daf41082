"""What `ktrans evaluate`, `predict` and `report` find in a run folder (the --out of
`ktrans train`, or a bundle from `codegen --target train`):

    <Model>.eval.json     what the evaluation model computes (written at codegen time)
    <Model>.eval.onnx     loss and metrics in inference mode, the weights as inputs
    <Model>.trained.onnx  the trained inference model (<Model>.onnx before training)
    data.json             the training data's kind, settings, class names, vocabularies

`MODEL.onnx` may name the trained model inside its run folder, or any inference model
(predict needs only the model; evaluate needs the run folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transpiler.emit.file_names import file_stem
from transpiler.errors import KdlError, KdlErrors


def fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


@dataclass
class Run:
    folder: Path | None
    model_file: Path  # the inference model to run
    settings: dict | None  # <Model>.eval.json
    data: object | None  # ktrans_runtime.sources.DataInfo

    @property
    def eval_model(self) -> Path:
        return self.folder / self.settings["files"]["eval"]


def _eval_settings(folder: Path, model: str | None) -> dict | None:
    if model:
        paths = [folder / f"{file_stem(model)}.eval.json"]
    else:
        paths = sorted(folder.glob("*.eval.json"))
    paths = [p for p in paths if p.is_file()]
    if len(paths) > 1:
        fail(f"{folder} holds the runs of several models", "name the model's .onnx instead")
    if not paths:
        return None
    try:
        settings = json.loads(paths[0].read_text())
        settings["files"]["eval"]
    except (ValueError, KeyError, TypeError):
        fail(f"{paths[0]}: not a ktrans evaluation settings file (written by ktrans codegen)")
    return settings


def open_run(target: str) -> Run:
    """The run named by `target`: a run folder, or an .onnx file (in its run folder or
    not)."""
    from transpiler.templates.ktrans_runtime.data_errors import DataError
    from transpiler.templates.ktrans_runtime.sources import read_data_info

    path = Path(target)
    if path.is_dir():
        settings = _eval_settings(path, None)
        if settings is None:
            fail(
                f"{path} is not a run folder: it has no <Model>.eval.json",
                "give the --out folder of ktrans train, or a model .onnx",
            )
        model = settings["model"]
        trained = path / f"{file_stem(model)}.trained.onnx"
        model_file = trained if trained.is_file() else path / settings["files"]["inference"]
        folder = path
    elif path.is_file() and path.suffix.lower() == ".onnx":
        folder = path.parent
        stem = path.name.split(".")[0]
        settings = _eval_settings(folder, stem) if stem else None
        model_file = path
    else:
        fail(f"{target}: no such run folder or .onnx file")
    try:
        data = read_data_info(folder) if settings is not None else None
    except DataError as e:
        fail(str(e))
    return Run(folder if settings is not None else None, model_file, settings, data)


def trained_weights(model_file: Path) -> dict:
    """The initializers of an inference model, by name (the training state's names)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(model_file))
    except Exception as e:  # onnx raises several types for a bad file
        fail(f"{model_file}: cannot read it as ONNX: {e}")
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def class_names(run: Run) -> dict[str, list[str]]:
    """{output: class names}: the model's `ktrans.class_names` metadata, else the run's
    data.json; {} if neither has them."""
    import onnx

    from transpiler.templates.ktrans_runtime.onnx_metadata import CLASS_NAMES

    model = onnx.load(str(run.model_file), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == CLASS_NAMES:
            try:
                return dict(json.loads(prop.value))
            except ValueError:
                break
    return dict(run.data.class_names) if run.data else {}
