"""Training data, engine-independent: what a step is fed, where it comes from, how an
epoch walks through it.

**Feeds.** A model script describes each array a training step takes as a `Feed` (from
its FEEDS literal): the feed's name (a model input, or `target:<output>` for a target),
the data array it comes from, its dtype and per-row shape, and for a target the loss it
feeds. `prepare.py` turns a data array into a feed's array, and checks it.

**Datasets.** A dataset is any object with `size: int` (rows) and
`take(rows) -> {feed name: array}` (one batch; `rows` is an array of row numbers or a
slice). `ArrayDataset` holds arrays in memory.

**Sources.** `open_data(path, feeds, options)` returns {"train": dataset, "val": dataset
or None, "test": dataset or None}, and optionally "class_names" ({output: names}, which
the trained model's metadata keeps) and "validation_split" (a source that split its own
validation data, as an image folder does), from the first registered source that
accepts the path. Registered below: the .npz source (npz_source.py), and image folders, CSV tables
and .npy folders (sources.py, with the train block's `data { }` section). Another format
registers its own:

    from ktrans_runtime import data

    def load_parquet(path, feeds, options):   # -> {"train": ..., "val": ..., "test": ...}
        ...

    data.register_source("Parquet file", lambda path: path.suffix == ".parquet", load_parquet)

**Epochs.** `split_validation` holds out the last rows before any shuffling (Keras's
validation_split); `epoch_order` is a function of (seed, epoch) only, so a resumed run
draws the same orders; `batch_rows` cuts an epoch's order into batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from . import console
from .errors import TrainingError
from .feeds import ArrayDataset  # noqa: F401  (the in-memory dataset, here for the sources)
from .files import special_kind

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Feed:
    """One array a training step takes."""

    name: str  # the step's input: a model input, or "target:<output>"
    array: str  # the data's array for it ("val_" / "test_" in front for those splits)
    dtype: str  # numpy dtype name
    shape: tuple  # per row; None where any length goes
    keras: str | None = None  # "x" or "y": Keras's x_train/y_train names also serve
    loss: str | None = None  # a target's loss (its domain is checked)
    classes: int | None = None  # sparse class ids: how many classes
    ignore_class: int | None = None  # sparse class ids: the loss's ignore_class

    @property
    def is_target(self) -> bool:
        return self.loss is not None

    @classmethod
    def from_spec(cls, name: str, spec: dict) -> Feed:
        fields = {key: spec.get(key) for key in ("keras", "loss", "classes", "ignore_class")}
        shape = tuple(spec["shape"])
        return cls(name=name, array=spec["array"], dtype=spec["dtype"], shape=shape, **fields)


def feeds_from(specs: dict[str, dict]) -> list[Feed]:
    """The Feeds of a script's FEEDS literal ({feed name: spec})."""
    return [Feed.from_spec(name, spec) for name, spec in specs.items()]


class Dataset(Protocol):
    size: int

    def take(self, rows) -> dict[str, np.ndarray]: ...


# ------------------------------------------------------------------ sources

# load(path, feeds, options): options are {"settings": the train block's data { }
# section, "seed": the run's seed, "out": the run's output folder, "run_split": (the
# run's validation_split, whether --validation-split or a resumed checkpoint gave it)}.
# A source that splits its own validation data (an image folder) returns its split as
# "validation_split"; the loop then holds out no rows itself.
Loader = Callable[[Path, list[Feed], dict], dict]
_SOURCES: list[tuple[str, Callable[[Path], bool], Loader]] = []


def register_source(kind: str, accepts: Callable[[Path], bool], load: Loader) -> None:
    """Adds a data format: `accepts(path)` says whether `load(path, feeds, options)`
    reads it."""
    _SOURCES.append((kind, accepts, load))


def open_data(path, feeds: list[Feed], options: dict | None = None) -> dict:
    """{"train", "val", "test"} datasets of `path` (val and test may be None)."""
    path = Path(path)
    if not path.exists():
        raise TrainingError(f"--data: there is no {path}")
    kind = special_kind(path)
    if kind or not (path.is_file() or path.is_dir()):
        raise TrainingError(
            f"--data: {path} is {kind or 'something else'}, neither a file nor a folder"
        )
    for _, accepts, load in _SOURCES:
        try:
            accepted = accepts(path)
        except OSError as e:
            raise TrainingError(f"--data: cannot read {path}: {e.strerror}") from None
        if accepted:
            return load(path, feeds, options or {})
    kinds = ", ".join(kind for kind, _, _ in _SOURCES)
    raise TrainingError(f"--data: {path} is not a kind of data this script reads ({kinds})")


def _load_npz(path: Path, feeds: list[Feed], options: dict) -> dict:
    from .npz_source import load_npz

    if options.get("settings"):
        key = next(iter(options["settings"]))
        raise TrainingError(
            f"--data: {path}: '{key}' does not apply to .npz archives (it comes from the "
            "train block's data section or a data flag)"
        )
    return load_npz(path, feeds)


def _is_npz(path: Path) -> bool:
    if path.is_dir():
        return False
    if path.suffix == ".npz":
        return True
    with open(path, "rb") as f:  # an .npz under another name: a zip archive
        return f.read(4) == b"PK\x03\x04"


def _load_other(path: Path, feeds: list[Feed], options: dict) -> dict:
    """Image folders, CSV tables and .npy folders (sources.py), for these feeds; the
    run's data.json is written beside its history."""
    from .data_errors import DataError
    from .feeds import Feed as SourceFeed
    from .sources import open_data as open_source
    from .sources import write_data_info

    theirs = [SourceFeed(f.name, f.array, f.shape, np.dtype(f.dtype).type) for f in feeds]
    try:
        opened = open_source(
            path, theirs, options.get("settings"), options.get("seed", 0), options.get("run_split")
        )
    except DataError as e:
        raise TrainingError(str(e)) from None
    if options.get("out"):
        write_data_info(options["out"], opened.info)
    names = {out: list(n) for out, n in opened.info.class_names.items() if out}
    data = {"train": opened.train, "val": opened.val, "test": opened.test, "class_names": names}
    if opened.info.kind == "images":  # the folder's files are split as Keras splits them
        data["validation_split"] = opened.info.settings.get("validation_split") or 0.0
    return data


def _is_other(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() == ".csv"


register_source(".npz archive", _is_npz, _load_npz)
register_source("image folder, CSV table, .npy folder", _is_other, _load_other)


# ------------------------------------------------------------------ epochs


def split_validation(train, val, split: float):
    """(train, val): validation data wins; else the last `split` of the training rows,
    taken before any shuffling, as Keras's validation_split."""
    if val is not None:
        if split > 0:
            console.note("validation arrays given, so no validation split")
        return train, val
    if split <= 0:
        return train, None
    if not hasattr(train, "split"):  # a registered source whose rows do not split
        console.note(f"validation_split {split} does not apply to this data: no validation")
        return train, None
    at = math.floor(train.size * (1.0 - split))
    if at == 0 or at == train.size:
        raise TrainingError(f"--validation-split {split} leaves no training or validation rows")
    return train.split(at)


def epoch_order(seed: int, epoch: int, size: int, shuffle: bool) -> np.ndarray:
    """The order of the training rows in an epoch: a function of (seed, epoch) only."""
    if not shuffle:
        return np.arange(size)
    return np.random.default_rng([seed, epoch]).permutation(size)


def batch_rows(order: np.ndarray, batch: int, batch_size: int) -> np.ndarray:
    """The rows of batch number `batch` of an epoch (the last batch may be smaller)."""
    return order[batch * batch_size : (batch + 1) * batch_size]


def rows_in(batch: dict[str, np.ndarray]) -> int:
    """The number of rows of a batch ({feed name: array}): a dataset may return fewer
    than it was asked for (an image that fails to decode is dropped)."""
    return len(next(iter(batch.values()))) if batch else 0


def steps_per_epoch(size: int, batch_size: int, limit: int | None = None) -> int:
    steps = math.ceil(size / batch_size)
    return min(steps, limit) if limit else steps
