"""What a run writes once training has ended, besides the checkpoint, the history and
results.json: the default end hooks of `loop.TrainingRun` (they run in this order, after
the trained model and results.json are written), and the writers ModelCheckpoint uses.

- `keras_files`: the trained weights for Keras beside the trained model,
  `<Model>.weights.h5` (what `load_weights` reads into the model of `ktrans codegen
  --target keras`) and `<Model>.weights.npz` (Keras layout, what `ktrans build --weights`
  reads), from the bundle's `<Model>.keras.json` (keras_export.py);
- `report_files`: `history.png` and `report.html` (report.py).

`save_keras` writes a ModelCheckpoint's `.weights.h5` or `.keras` file; `add_class_names`
puts the training data's class names into an exported ONNX model's metadata
(onnx_metadata.py), where `ktrans predict` finds them. A file that cannot be written for
want of a package (h5py, matplotlib) or of a part of the export description is a note,
never a failed run.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import console
from .files import atomic_write


def _export_info(run) -> dict | None:
    """The bundle's Keras export description (compiled["keras"]), read once; None (with
    a note) if the script has none or it cannot be read."""
    if not hasattr(run, "_keras_info"):
        from .keras_export import ExportError, read_export_info

        run._keras_info = None
        path = run.compiled.get("keras")
        if path:
            try:
                run._keras_info = read_export_info(path)
            except ExportError as e:
                console.note(f"no Keras files are written: {e}")
    return run._keras_info


def _notes(notes: list[str]) -> None:
    for note in notes:
        console.note(note)


def keras_files(run) -> None:
    """End hook: `<stem>.weights.npz` and `<stem>.weights.h5` into --out."""
    from .keras_export import export_run

    info = _export_info(run)
    if info is None:
        return
    written, notes = export_run(run.engine, info, run.out, run.stem)
    _notes(notes)
    for path in written:
        console.result(f"wrote {path}")


def save_keras(run, path: Path) -> None:
    """ModelCheckpoint's `.weights.h5` (the weights) or `.keras` (a Keras 3 archive)."""
    from .keras_export import export_checkpoint

    info = _export_info(run)
    if info is None:
        console.note(f"{path.name} was not written: this bundle has no Keras export description")
        return
    _notes(export_checkpoint(run.engine, info, path)[1])


def report_files(run) -> None:
    """End hook: history.png and report.html from the run folder's files."""
    from .report import write_report

    written = write_report(run.out)
    report = next((p for p in written if p.name.endswith(".html")), None)
    if report is not None:
        console.result(f"report: {report}")


DEFAULT_HOOKS = (keras_files, report_files)


def add_class_names(path: Path, class_names: dict[str, list[str]]) -> None:
    """Adds `ktrans.class_names` ({output: names}, JSON) to the ONNX model at `path`."""
    from .onnx_metadata import CLASS_NAMES, metadata_entries

    data = Path(path).read_bytes() + metadata_entries({CLASS_NAMES: json.dumps(class_names)})
    atomic_write(Path(path), lambda f: f.write(data))
