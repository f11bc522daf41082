"""The .npz data source: one archive of named arrays, rows are samples.

Arrays named after the feeds' data arrays (the model's inputs and trained outputs) hold
the training data; the same names with "val_" or "test_" in front hold validation and
test data. A model with one input and one trained output may use Keras's names instead:
x_train and y_train (or x and y), x_val and y_val, x_test and y_test. Each array is
prepared for its feed (prepare.py), which checks it and says what it changed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .data import SPLITS, ArrayDataset, Feed
from .errors import TrainingError
from .prepare import prepare

PREFIX = {"train": "", "val": "val_", "test": "test_"}
KERAS_NAMES = {
    ("train", "x"): ["x_train", "x"],
    ("train", "y"): ["y_train", "y"],
    ("val", "x"): ["x_val"],
    ("val", "y"): ["y_val"],
    ("test", "x"): ["x_test"],
    ("test", "y"): ["y_test"],
}
SHOWN = 20  # array names listed in a message, at most


def array_names(array: str, keras: str | None, split: str) -> list[str]:
    """The names that may hold the data array `array` in `split`, its own name first,
    then Keras's (`keras`: "x" or "y" for a model with one input and one trained output,
    else None). The .npy folders name their files by the same rules (npy_dir.py)."""
    return [PREFIX[split] + array] + KERAS_NAMES.get((split, keras), [])


def candidates(feed: Feed, split: str) -> list[str]:
    """The array names that may hold `feed` in `split`, the model's own name first."""
    return array_names(feed.array, feed.keras, split)


def find_arrays(
    files: list[str], feeds: list[Feed], split: str, source: str = "--data"
) -> dict[str, str] | None:
    """{feed name: array name} for `split`; None if the archive (`source`) holds none
    of its arrays, TrainingError if it holds some but not all."""
    present = set(files)
    found = {}
    for feed in feeds:
        names = [name for name in candidates(feed, split) if name in present]
        if names:
            found[feed.name] = names[0]
    if not found:
        return None
    missing = [feed for feed in feeds if feed.name not in found]
    if missing:
        raise TrainingError(missing_message(split, missing, files, feeds, source))
    return found


def missing_message(
    split: str, missing: list[Feed], files: list[str], feeds: list[Feed], source: str = "--data"
) -> str:
    """`--data d.npz: the train data has no array 'tokens'; it holds: x_tr, y` and, where
    the archive uses Keras's names for a model they do not serve, what to do instead;
    `source` names the archive."""
    names = [f"'{PREFIX[split]}{feed.array}'" for feed in missing]
    if not any(KERAS_NAMES.get((split, feed.keras)) for feed in missing):
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        what = f"no array{'s' if len(names) > 1 else ''} {listed}"
    else:
        parts = []
        for feed, name in zip(missing, names):
            keras = KERAS_NAMES.get((split, feed.keras))
            parts.append(
                f"no array {name}" + (f" (nor Keras's {' or '.join(keras)})" if keras else "")
            )
        what = " and ".join(parts)
    message = f"{source}: the {split} data has {what}; it holds: {listing(files)}"
    uses_keras = {n for names in KERAS_NAMES.values() for n in names} & set(files)
    if uses_keras and not any(feed.keras for feed in feeds):
        inputs = [feed.array for feed in feeds if not feed.is_target]
        outputs = [feed.array for feed in feeds if feed.is_target]
        keras_names = ", ".join(sorted(uses_keras))
        message += (
            f". Keras's names ({keras_names}) serve a model with one input and one "
            f"trained output; this one has the input(s) {', '.join(inputs)} and the "
            f"trained output(s) {', '.join(outputs) or 'none'}: name the arrays after "
            "them (with val_ or test_ in front for validation or test data)"
        )
    return message


def listing(files: list[str]) -> str:
    if not files:
        return "nothing"
    shown = ", ".join(files[:SHOWN])
    return shown + (f" and {len(files) - SHOWN} more" if len(files) > SHOWN else "")


def load_npz(path: Path, feeds: list[Feed]) -> dict:
    """{"train", "val", "test"} ArrayDatasets of the archive (val, test may be None)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TrainingError(
            f"--data: cannot read {path}: it is not an .npz archive ({e})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TrainingError(
            f"--data: {path} holds a single array; give an .npz archive of named "
            "arrays (numpy.savez(path, x_train=..., y_train=...))"
        )
    out: dict = {}
    with archive:
        files = list(archive.files)
        for split in SPLITS:
            names = find_arrays(files, feeds, split, f"--data {path}")
            if names is None:
                if split == "train":
                    message = missing_message(split, feeds, files, feeds, f"--data {path}")
                    raise TrainingError(message)
                out[split] = None
                continue
            arrays = {}
            for feed in feeds:
                array_name = names[feed.name]
                arrays[feed.name] = prepare(
                    _read(archive, array_name, path), array_name, feed, f"--data {path}"
                )
            out[split] = ArrayDataset(arrays)
    return out


def _read(archive, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TrainingError(f"--data: cannot read the array '{name}' of {path}: {e}") from None
