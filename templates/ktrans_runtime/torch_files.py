"""What the PyTorch engine writes of a model: the trained inference `.onnx` (as the
onnxruntime engine writes it, so both engines' runs end alike), the module's
`state_dict` (`.pt`), and Keras's files (`.weights.npz` in Keras's layout, which
`ktrans build --weights` reads, and `.weights.h5`, which the model of `ktrans codegen
--target keras` loads).

The engine's weights are in Keras's layout; for the `.onnx` they are put into the ONNX
layout by the bundle's recipes run backwards (onnx_layout.py) and written over the
initial weights' bytes in a copy of the bundle's inference model (ort_engine.Exporter),
so no onnx package is needed. A bundle whose model could not be exported that way has no
inference model; FILES["onnx_error"] says why, and asking for an `.onnx` says so.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .errors import TrainingError
from .files import write_bytes


class TrainedFiles:
    """The bundle's export files (`files`: the script's FILES, in `folder`) for a model
    whose initial Keras-layout weights are `initial`."""

    def __init__(self, folder: Path, files: dict, initial: dict) -> None:
        from .keras_export import ExportError, read_export_info

        self.exporter, self.info = None, {}
        if not files:
            self.onnx_error = "no bundle files were given"
            return

        self.folder, self.files = Path(folder), files
        self.onnx_error = files.get("onnx_error") or "the bundle has no inference model"
        try:
            self.info = read_export_info(self.folder / files["keras"])
        except ExportError as e:
            self.info, self.onnx_error = {}, str(e)
        if files.get("inference") and self.info.get("recipes"):
            self.exporter = self._exporter(initial)

    @classmethod
    def none(cls) -> TrainedFiles:
        """No export files (an engine made outside a bundle, as in tests)."""
        return cls(Path("."), {}, {})

    def _exporter(self, initial: dict):
        from .onnx_layout import onnx_arrays
        from .ort_engine import Exporter

        path = self.folder / self.files["offsets"]
        try:
            offsets = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise TrainingError(f"cannot read {path}: {e}; regenerate the bundle") from None
        start = onnx_arrays(initial, self.info["recipes"])
        return Exporter(self.folder / self.files["inference"], offsets, start)

    def onnx(self, path: Path, weights: dict) -> None:
        """The inference model with `weights` (Keras layout), written atomically."""
        if self.exporter is None:
            raise TrainingError(
                f"cannot write {Path(path).name}: {self.onnx_error}; the Keras-layout "
                "weights (.weights.npz) give it with ktrans build --weights"
            )
        from .onnx_layout import onnx_arrays

        self.exporter.write(Path(path), onnx_arrays(weights, self.info["recipes"]))


def state_dict_bytes(model, torch) -> bytes:
    """The module's state_dict, as torch.save writes it."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write_state_dict(path: Path, model, weights: dict, torch) -> None:
    """The module's state_dict with `weights` (Keras layout), written atomically; the
    module keeps its own weights."""
    current = model.keras_weights()
    model.load_keras_weights(weights)
    try:
        data = state_dict_bytes(model, torch)
    finally:
        model.load_keras_weights(current)
    write_bytes(Path(path), data)


def initial_weights(folder: Path, files: dict) -> dict[str, np.ndarray]:
    """The bundle's initial weights (Keras layout)."""
    path = Path(folder) / files["init"]
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as e:
        raise TrainingError(f"cannot read {path}: {e}; regenerate the bundle") from None
