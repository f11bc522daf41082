"""`ktrans predict MODEL.onnx|RUN_DIR --input FILE.png|DIR|FILE.csv|FILE.npy [--top-k K]`:
one row per item (an image file, a table row, an array row) with the model's outputs.
An output with one unit per class shows its K best classes by name (the class names
saved in the trained model, else in the run's data.json, else class ids) with their
scores; any other output shows its values. Images are read as training read them (the
run's image_size, color_mode, interpolation; else the model input's size), tables with
the run's columns and vocabularies. Prints a table, or writes CSV or JSON with -o.
Streams large inputs in batches, with progress on long work.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from transpiler.run_folder import class_names, fail, open_run

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


class ImageFiles:
    """Image files as a dataset of one input (for prediction: no labels)."""

    def __init__(self, paths: list[str], feed, settings) -> None:
        import numpy as np

        from transpiler.templates.ktrans_runtime.image_folder import ImageFolderDataset

        labels = np.zeros(len(paths), np.int32)
        self.inner = ImageFolderDataset(paths, labels, settings, feed.name, None, "int", 0)
        self.size = len(paths)
        self.names = paths

    def take(self, rows):
        images, kept = self.inner.images(rows)
        return {self.inner.input_name: images, "ktrans:rows": kept}


def image_input(path: Path, feeds, run):
    from transpiler.templates.ktrans_runtime.image_folder import FORMATS
    from transpiler.templates.ktrans_runtime.sources import image_settings

    (feed,) = feeds if len(feeds) == 1 else fail("images feed a model with one input")
    settings = dict(run.data.settings) if run.data and run.data.kind == "images" else {}
    chosen = image_settings(settings, feed, 0)
    chosen.check()
    if path.is_dir():
        paths = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in FORMATS)
        if not paths:
            fail(f"{path}: no image files ({' '.join(FORMATS)})")
    else:
        paths = [str(path)]
    return ImageFiles(paths, feed, chosen)


def table_input(path: Path, feeds, run):
    from transpiler.templates.ktrans_runtime.csv_table import CsvSettings, open_csv

    settings = run.data.settings if run.data and run.data.kind == "csv" else {}
    columns = {f.key: c for f, c in _columns(settings, feeds).items()}
    table = open_csv(
        path,
        feeds,
        CsvSettings(columns, list(settings.get("categorical", [])), settings.get("delimiter", ",")),
        run.data.vocabularies if run.data else None,
    )
    dataset = table.dataset
    dataset.names = [f"row {i + 1}" for i in range(dataset.size)]
    return dataset


def _columns(settings: dict, feeds) -> dict:
    mapped = settings.get("columns") or {}
    return {f: mapped[f.key] for f in feeds if f.key in mapped}


def array_input(path: Path, feeds):
    import numpy as np

    from transpiler.templates.ktrans_runtime.feeds import ArrayDataset
    from transpiler.templates.ktrans_runtime.npy_dir import column_for

    (feed,) = feeds if len(feeds) == 1 else fail(".npy input feeds a model with one input")
    column = column_for(path, feed)

    class Rows(ArrayDataset):
        def take(self, rows):
            rows = np.arange(self.size)[rows] if isinstance(rows, slice) else rows
            return {feed.name: column.rows(np.asarray(rows))}

    dataset = Rows({feed.name: column.array})
    dataset.names = [f"row {i + 1}" for i in range(dataset.size)]
    return dataset


def describe(values, names: list[str] | None, top_k: int) -> list[tuple]:
    """[(column, value)] for one item of one output."""
    import numpy as np

    values = np.asarray(values)
    if values.ndim == 1 and values.size > 1:
        best = np.argsort(-values, kind="stable")[:top_k]
        out = []
        for rank, i in enumerate(best, 1):
            label = names[i] if names and i < len(names) else str(int(i))
            out += [(f"class_{rank}", label), (f"score_{rank}", float(values[i]))]
        return out
    if values.size == 1:
        value = float(values.reshape(()))
        out = [("value", value)]
        if names and len(names) == 2:
            out.append(("class", names[int(value > 0.5)]))
        return out
    return [("values", values.round(6).tolist())]


def predict_rows(run, dataset, top_k: int) -> list[dict]:
    import numpy as np

    from transpiler.cli_evaluate import Progress
    from transpiler.runtime.session import create_session
    from transpiler.templates.ktrans_runtime.prefetch import Prefetcher

    session = create_session(str(run.model_file))
    outputs = [o.name for o in session.get_outputs()]
    names = class_names(run)
    batch_size = 64
    steps = -(-dataset.size // batch_size)
    order = (
        np.arange(i * batch_size, min((i + 1) * batch_size, dataset.size)) for i in range(steps)
    )
    progress = Progress("predict")
    rows = []
    with Prefetcher(dataset, order) as batches:
        for step, (asked, batch) in enumerate(batches, 1):
            kept = batch.pop("ktrans:rows", asked)
            if len(kept):
                results = session.run(outputs, batch)
                for j, row in enumerate(kept):
                    entry = {"item": dataset.names[row]}
                    for output, values in zip(outputs, results):
                        prefix = f"{output}." if len(outputs) > 1 else ""
                        for column, value in describe(values[j], names.get(output), top_k):
                            entry[prefix + column] = value
                    rows.append(entry)
            progress(step, steps)
    return rows


def render(rows: list[dict], fmt: str) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def cmd_predict(args) -> int:
    import onnxruntime as ort

    from transpiler.emit.onnx.save import atomic_write_bytes
    from transpiler.templates.ktrans_runtime.data_errors import DataError
    from transpiler.templates.ktrans_runtime.sources import feeds_of

    if args.top_k < 1:
        fail("--top-k must be at least 1")
    run = open_run(args.model)
    session = ort.InferenceSession(str(run.model_file), providers=["CPUExecutionProvider"])
    infos = session.get_inputs()
    feeds = feeds_of(infos, [i.name for i in infos], {})
    path = Path(args.input)
    if not path.exists():
        fail(f"--input {path}: no such file or folder")
    try:
        if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
            dataset = image_input(path, feeds, run)
        elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
            dataset = table_input(path, feeds, run)
        elif path.suffix.lower() == ".npy":
            dataset = array_input(path, feeds)
        else:
            fail(f"--input {path}: expected an image, a folder of images, a .csv or a .npy")
        rows = predict_rows(run, dataset, args.top_k)
    except DataError as e:
        fail(str(e))
    if args.output:
        out = Path(args.output)
        fmt = {".csv": "csv", ".json": "json"}.get(out.suffix.lower())
        if fmt is None:
            fail(f"-o {out}: write .csv or .json")
        atomic_write_bytes(out, render(rows, fmt).encode())
        print(f"wrote {out} ({len(rows)} rows)", file=sys.stderr)
    else:
        sys.stdout.write(render(rows, "table"))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predictions of a trained model on images, a CSV or a .npy, with class names",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", metavar="MODEL.onnx|RUN_DIR", help="a run folder or a model")
    p.add_argument("--input", required=True, metavar="FILE|DIR", help="image, folder, .csv, .npy")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="best classes shown (1)")
    p.add_argument("-o", "--output", metavar="OUT.csv|OUT.json", help="default: a table")
    p.set_defaults(run=cmd_predict)
