"""A directory of `.npy` files as training data, memory-mapped: arrays larger than memory
stream from disk, a batch's rows gathered when the step needs them.

    data/
        image.npy        (60000, 28, 28, 1) float32     a model input, by name
        output.npy       (60000,) int64                  an output's targets, by name
        val_image.npy, val_output.npy, test_image.npy, test_output.npy

Files are named as the arrays of an `.npz` (the same names: the model's inputs and
outputs; "val_" and "test_" in front for validation and test data; x_train/y_train,
x_val/y_val, x_test/y_test for a model with one input and one trained output). Each is
opened with `numpy.load(mmap_mode="r")`: only its header is read when the directory is
opened, and every header is checked against the model before training starts (rows,
shape per row, dtype). A batch reads its rows (in sorted order, for the disk) and casts
them to the model's type; class ids for a one-unit-per-class target become one-hot rows.

Casts are the ones that keep values (numpy's "same_kind": uint8 pixels to float32 as
they are, no scaling; float64 to float32); a float array for an integer input, and
anything else, is an error naming the file, its shape and dtype, and what the model
takes. Class ids are checked against the output's classes when the directory is opened
(read in chunks, so a large label file is not loaded at once).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data_errors import DataError
from .feeds import Feed, fits, one_hot

PREFIXES = {"train": "", "val": "val_", "test": "test_"}
KERAS_NAMES = {
    "train": (["x_train", "x"], ["y_train", "y"]),
    "val": (["x_val"], ["y_val"]),
    "test": (["x_test"], ["y_test"]),
}
CHUNK_ROWS = 1 << 16


def candidates(feeds: list[Feed], split: str) -> dict[str, list[str]]:
    """{feed name: the array names that may hold it} for one split."""
    prefix = PREFIXES[split]
    wanted = {feed.name: [prefix + feed.key] for feed in feeds}
    inputs = [f for f in feeds if not f.is_target]
    targets = [f for f in feeds if f.is_target]
    if len(inputs) == 1 and len(targets) <= 1:
        x_names, y_names = KERAS_NAMES[split]
        wanted[inputs[0].name] += x_names
        if targets:
            wanted[targets[0].name] += y_names
    return wanted


def find_split(files, feeds: list[Feed], split: str) -> dict | None:
    """{feed name: array name} for one split, None if no array of the split is among
    `files` (the array names: file stems, or an .npz's names)."""
    wanted = candidates(feeds, split)
    found = {}
    for name, names in wanted.items():
        present = [n for n in names if n in files]
        if present:
            found[name] = present[0]
    if not found:
        return None
    for name, names in wanted.items():
        if name not in found:
            options = " or ".join(f"{n}.npy" for n in names)
            raise DataError(f"the {split} data has {len(found)} arrays but no {options}")
    return found


def open_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read it as an .npy array: {e}") from None
    if array.ndim == 0:
        raise DataError(f"{path}: a scalar, not rows of samples")
    return array


@dataclass
class Column:
    """One memory-mapped array feeding one feed: how its rows become the feed's."""

    path: Path
    array: np.ndarray
    feed: Feed
    one_hot: int = 0  # classes, when class ids become one-hot rows
    shape: tuple = ()  # the per-row shape to reshape to ((): keep)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        order = np.argsort(rows, kind="stable")
        values = np.empty((len(rows), *self.array.shape[1:]), self.array.dtype)
        values[order] = self.array[rows[order]]
        if self.one_hot:
            return one_hot(values.reshape(len(rows)), self.one_hot, self.feed.dtype, str(self.path))
        if self.shape:
            values = values.reshape(len(rows), *self.shape)
        return values.astype(self.feed.dtype, copy=False)


def check_labels(path: Path, array: np.ndarray, classes: int) -> None:
    """Class ids must be 0..classes-1; read in chunks."""
    for start in range(0, len(array), CHUNK_ROWS):
        chunk = np.asarray(array[start : start + CHUNK_ROWS]).reshape(-1)
        bad = np.flatnonzero((chunk < 0) | (chunk >= classes))
        if bad.size:
            row = start + int(bad[0])
            raise DataError(
                f"{path}: row {row} holds the class {chunk[bad[0]]}, outside 0..{classes - 1} "
                f"(the output has {classes} units)"
            )


def column_for(path: Path, feed: Feed, array: np.ndarray | None = None) -> Column:
    """Checks the header of `path` (or `array`, read from it) against `feed`: rows, shape,
    dtype."""
    array = open_array(path) if array is None else array
    row_shape = tuple(array.shape[1:])
    want = tuple(feed.shape)
    what = f"{path}: {array.dtype} rows shaped {row_shape}, but {feed.describe()} takes"
    classes = feed.classes
    ids = np.issubdtype(array.dtype, np.integer) and array.size == len(array)
    if classes > 1 and ids and not fits(row_shape, want):
        check_labels(path, array, classes)
        print(f"data: {path}: class ids one-hot encoded ({classes} classes)", file=sys.stderr)
        return Column(path, array, feed, one_hot=classes)
    if not np.can_cast(array.dtype, feed.dtype, "same_kind"):
        raise DataError(f"{what} {feed.wants()}")
    if fits(row_shape, want):
        return Column(path, array, feed)
    fixed = all(isinstance(d, int) for d in want)
    if fixed and int(np.prod(row_shape)) == int(np.prod(want)):
        return Column(path, array, feed, shape=want)
    raise DataError(f"{what} {feed.wants()}")


class NpyDataset:
    """Memory-mapped arrays by feed name: `take(rows)` gathers a batch."""

    def __init__(self, columns: dict[str, Column]) -> None:
        sizes = {c.path.name: len(c.array) for c in columns.values()}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
            raise DataError(f"arrays with different numbers of rows: {listed}")
        self.columns = columns
        self.size = next(iter(sizes.values()))

    def take(self, rows) -> dict[str, np.ndarray]:
        rows = np.arange(self.size)[rows] if isinstance(rows, slice) else np.asarray(rows)
        return {name: column.rows(rows) for name, column in self.columns.items()}

    def split(self, at: int) -> tuple[NpyDataset, NpyDataset]:
        def part(rows: slice) -> NpyDataset:
            return NpyDataset(
                {n: Column(c.path, c.array[rows], c.feed, c.one_hot, c.shape)
                 for n, c in self.columns.items()}
            )  # fmt: skip

        return part(slice(0, at)), part(slice(at, None))


def open_npy_dir(directory: str | Path, feeds: list[Feed]) -> dict[str, NpyDataset | None]:
    """The train, val and test datasets of the directory (val and test may be None)."""
    directory = Path(directory)
    files = {p.stem: p for p in sorted(directory.glob("*.npy"))}
    if not files:
        raise DataError(f"{directory}: no .npy files")
    out: dict[str, NpyDataset | None] = {}
    for split in PREFIXES:
        found = find_split(files, feeds, split)
        if found is None:
            if split == "train":
                expected = ", ".join(f"{f.key}.npy" for f in feeds)
                raise DataError(
                    f"{directory}: no training arrays: expected {expected} (or x_train.npy, "
                    f"y_train.npy); it holds {', '.join(p.name for p in files.values())}"
                )
            out[split] = None
            continue
        by_name = {f.name: f for f in feeds}
        out[split] = NpyDataset({n: column_for(files[a], by_name[n]) for n, a in found.items()})
    return out
