"""`ktrans predict MODEL.onnx|RUN_DIR --input FILE.png|DIR|FILE.csv|FILE.npy [--top-k K]`:
one row per item (an image file, a table row, an array row) with the model's outputs.
An output with one unit per class shows its K best classes by name (the class names
saved in the trained model, else in the run's data.json, else class ids) with their
scores; any other output shows its values. Images are read as training read them (the
run's image_size, color_mode, interpolation; else the model input's size), tables with
the run's columns and vocabularies (the inputs' columns only: no target column needed).
Prints a table, or writes CSV or JSON with -o (row by row, as batches are predicted).
Items go in batches of 64: a CSV file is read 64 rows at a time, images and .npy rows
are read ahead on a thread; long work shows progress.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from transpiler.run_folder import class_names, fail, open_run

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


BATCH_SIZE = 64


class ImageFiles:
    """Image files as a dataset of one input (for prediction: no labels). The files are
    checked when opened, as training checks a folder: an unreadable file is skipped
    (one line each, then their count), and none left is an error."""

    def __init__(self, paths: list[str], feed, settings, source: Path) -> None:
        import numpy as np

        from transpiler.templates.ktrans_runtime.image_folder import (
            ImageFolderDataset,
            check_files,
        )

        decoded, bad = check_files(paths, settings)
        if len(bad) == len(paths):
            many = len(paths) > 1
            what = f"all {len(paths)} images of {source} were" if many else f"{source} was"
            fail(f"nothing to predict: {what} skipped (unreadable)")
        keep = [i for i in range(len(paths)) if i not in bad]
        self.names = [paths[i] for i in keep]
        self.size = len(keep)
        self.inner = ImageFolderDataset(
            self.names,
            np.zeros(self.size, np.int32),
            settings,
            feed.name,
            None,
            "int",
            0,
            cache=None if decoded is None else decoded[keep],
            cached=None if decoded is None else np.ones(self.size, bool),
        )

    def take(self, rows):
        images, kept = self.inner.images(rows)
        return {self.inner.input_name: images, "ktrans:rows": kept}


def image_input(path: Path, feeds, run):
    from transpiler.templates.ktrans_runtime.image_folder import FORMATS
    from transpiler.templates.ktrans_runtime.sources import image_settings

    (feed,) = feeds if len(feeds) == 1 else fail("images feed a model with one input")
    settings = dict(run.data.settings) if run.data and run.data.kind == "images" else {}
    chosen = image_settings(settings, feed, 0, path)
    chosen.check()
    if path.is_dir():
        paths = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in FORMATS)
        if not paths:
            fail(f"{path}: no image files ({' '.join(FORMATS)})")
    else:
        paths = [str(path)]
    return ImageFiles(paths, feed, chosen, path)


def table_batches(path: Path, feeds, run):
    """(item names, batch) of BATCH_SIZE rows at a time, read from the CSV file as they
    are predicted: the table is never held whole. Only the inputs' columns are read (a
    table without the target column predicts), with the run's columns, categorical
    columns and vocabularies."""
    import itertools

    from transpiler.templates.ktrans_runtime.csv_table import (
        CsvSettings,
        feed_array,
        feed_columns,
        table_chunks,
    )

    settings = run.data.settings if run.data and run.data.kind == "csv" else {}
    columns = {f.key: c for f, c in _columns(settings, feeds).items()}
    chunks = table_chunks(path, settings.get("delimiter", ","), BATCH_SIZE)
    first = next(chunks)
    if not first.rows:
        fail(f"nothing to predict: {path} has a header but no rows")
    chosen = feed_columns(first, feeds, CsvSettings(columns))
    read = {name for names in chosen.values() for name in names}
    vocabularies = run.data.vocabularies if run.data else {}
    vocabs = {c: vocabularies[c] for c in settings.get("categorical", []) if c in read}
    done = 0
    for table in itertools.chain([first], chunks):
        batch = {f.name: feed_array(table, f, chosen[f.name], vocabs) for f in feeds}
        yield [f"row {done + i + 1}" for i in range(table.rows)], batch
        done += table.rows


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


def dataset_batches(dataset):
    """(item names, batch) of BATCH_SIZE items at a time, read ahead on a thread; an
    image that fails to decode is left out of its batch."""
    import numpy as np

    from transpiler.templates.ktrans_runtime.prefetch import Prefetcher

    steps = -(-dataset.size // BATCH_SIZE)
    order = (
        np.arange(i * BATCH_SIZE, min((i + 1) * BATCH_SIZE, dataset.size)) for i in range(steps)
    )
    with Prefetcher(dataset, order) as batches:
        for asked, batch in batches:
            kept = batch.pop("ktrans:rows", asked)
            yield [dataset.names[row] for row in kept], batch


def describe(values, names: list[str] | None, top_k: int) -> list[tuple]:
    """[(column, value)] for one item of one output."""
    import numpy as np

    values = np.asarray(values)
    if values.ndim == 1 and values.size > 1:
        best = np.argsort(-values, kind="stable")[:top_k]
        out = []
        for rank, i in enumerate(best, 1):
            label = names[i] if names and i < len(names) else str(int(i))
            out += [(f"top{rank}_class", label), (f"top{rank}_score", float(values[i]))]
        return out
    if values.size == 1:
        value = float(values.reshape(()))
        out = [("value", value)]
        if names and len(names) == 2:
            out.append(("class", names[int(value > 0.5)]))
        return out
    return [("values", values.round(6).tolist())]


def predict_rows(run, batches, top_k: int, steps: int | None) -> Iterator[dict]:
    """One row per item, as its batch is predicted (`steps` batches, None: not known)."""
    from transpiler.cli_evaluate import Progress
    from transpiler.runtime.session import create_session

    session = create_session(str(run.model_file))
    outputs = [o.name for o in session.get_outputs()]
    names = class_names(run)
    progress = Progress("predict")
    step = 0
    for step, (items, batch) in enumerate(batches, 1):
        if items:
            results = session.run(outputs, batch)
            for j, item in enumerate(items):
                entry = {"item": item}
                for output, values in zip(outputs, results):
                    prefix = f"{output}." if len(outputs) > 1 else ""
                    for column, value in describe(values[j], names.get(output), top_k):
                        entry[prefix + column] = value
                yield entry
        progress(step, steps)
    progress.finish(step, steps)


def nonempty(rows: Iterator[dict]) -> Iterator[dict]:
    """`rows`, or an error when every item was skipped."""
    count = 0
    for row in rows:
        count += 1
        yield row
    if not count:
        fail("nothing to predict: every item was skipped (unreadable)")


def write_csv(rows: Iterator[dict], out: BinaryIO) -> int:
    """Writes the rows as they come (the columns are the first row's); their count."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = None
    count = 0
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(text, list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
        count += 1
    text.flush()
    text.detach()
    return count


def write_json(rows: Iterator[dict], out: BinaryIO) -> int:
    """Writes a JSON list of the rows, one a line, as they come; their count."""
    out.write(b"[")
    count = 0
    for row in rows:
        out.write(b",\n" if count else b"\n")
        out.write(json.dumps(row).encode())
        count += 1
    out.write(b"\n]\n")
    return count


def render_table(rows: list[dict]) -> str:
    """The rows aligned in columns (the table needs every row for its widths)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def cmd_predict(args) -> int:
    import onnxruntime as ort

    from transpiler.atomic_files import atomic_write
    from transpiler.templates.ktrans_runtime.data_errors import DataError
    from transpiler.templates.ktrans_runtime.sources import feeds_of

    if args.top_k < 1:
        fail("--top-k must be at least 1")
    out = Path(args.output) if args.output else None
    writers = {".csv": write_csv, ".json": write_json}
    if out is not None and out.suffix.lower() not in writers:
        fail(f"-o {out}: write .csv or .json")
    run = open_run(args.model)
    session = ort.InferenceSession(str(run.model_file), providers=["CPUExecutionProvider"])
    infos = session.get_inputs()
    feeds = feeds_of(infos, [i.name for i in infos], {})
    path = Path(args.input)
    if not path.exists():
        fail(f"--input {path}: no such file or folder")
    try:
        suffix = path.suffix.lower()
        if path.is_dir() or suffix in IMAGE_SUFFIXES:
            dataset = image_input(path, feeds, run)
        elif suffix in (".csv", ".tsv", ".txt"):
            dataset = None
            batches, steps = table_batches(path, feeds, run), None
        elif suffix == ".npy":
            dataset = array_input(path, feeds)
        else:
            fail(f"--input {path}: expected an image, a folder of images, a .csv or a .npy")
        if dataset is not None:
            batches, steps = dataset_batches(dataset), -(-dataset.size // BATCH_SIZE)
        rows = nonempty(predict_rows(run, batches, args.top_k, steps))
        if out is None:
            sys.stdout.write(render_table(list(rows)))
            return 0
        written = []
        atomic_write(out, lambda f: written.append(writers[out.suffix.lower()](rows, f)))
    except DataError as e:
        fail(str(e))
    print(f"wrote {out} ({written[0]} rows)", file=sys.stderr)
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
