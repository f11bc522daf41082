"""A data array as its feed takes it, checked, and nothing changed silently.

What `prepare` may do, each said in one line on stderr:
- cast to the feed's dtype (never rescale: uint8 pixels stay 0..255, as in Keras; scale
  with a Rescaling layer). Floats cast to integers must hold whole numbers, and values
  must fit the integer type;
- for a target of a categorical loss, turn integer class labels shaped (n,) or (n, 1)
  into one-hot rows;
- for a target of a sparse loss (class ids), drop a last axis of size 1;
- reshape rows whose size matches the feed's shape (784 values to 28x28x1).

What it refuses, naming the array, the row and the value: a scalar instead of rows,
values that are NaN or infinite, rows of the wrong shape, and targets outside their
loss's domain: binary crossentropy targets outside [0, 1], categorical targets that are
not one-hot rows (or probability rows, or all-zero rows: no class), class ids outside
the output's classes.
"""

from __future__ import annotations

import math

import numpy as np

from . import console
from .data import Feed
from .errors import TrainingError

BINARY_LOSSES = frozenset({"binary_crossentropy", "binary_focal_crossentropy"})
CATEGORICAL_LOSSES = frozenset({"categorical_crossentropy", "categorical_focal_crossentropy"})
ONE_HOT_LOSSES = CATEGORICAL_LOSSES | {"categorical_hinge", "kl_divergence"}
ROW_SUM_TOLERANCE = 1e-3


def prepare(array: np.ndarray, label: str, feed: Feed, source: str = "--data") -> np.ndarray:
    """`array` (the data's array `label`) as `feed` takes it; prints what it changed.
    `source` starts every message: "--data mnist.npz" names the file."""
    dtype = np.dtype(feed.dtype)
    where = f"{source}: {label}"
    if array.ndim == 0:
        raise TrainingError(f"{where} is a single value, not rows of samples")
    done: list[str] = []
    rows = len(array)
    want = list(feed.shape)
    sparse = feed.classes is not None
    if sparse and array.ndim == len(want) + 2 and array.shape[-1] == 1:
        array = array.reshape(array.shape[:-1])
        done.append("dropped the last axis (size 1) of the class ids")
    integers = np.issubdtype(array.dtype, np.integer)
    classes = want[0] if len(want) == 1 and isinstance(want[0], int) else 0
    if feed.loss in ONE_HOT_LOSSES and integers and classes > 1 and array.size == rows:
        labels = array.reshape(rows)
        _check_ids(labels, where, classes, None)
        array = np.eye(classes, dtype=dtype)[labels]
        done.append(f"one-hot encoded ({classes} classes)")
    if array.dtype != dtype:
        done.append(f"cast from {array.dtype.name} to {dtype.name}")
        array = _cast(array, where, dtype)
    if np.issubdtype(array.dtype, np.floating):
        _check_finite(array, where)
    if sparse:
        _check_ids(array, where, feed.classes, feed.ignore_class)
    array = _reshape(array, where, want, done)
    if feed.loss is not None:
        check_target(array, where, feed.loss)
    if done:
        console.info(f"data: {label}: {', '.join(done)}")
    return np.ascontiguousarray(array)


def _cast(array: np.ndarray, where: str, dtype: np.dtype) -> np.ndarray:
    """`array` as `dtype`: integers must fit, floats cast to integers must be whole."""
    if np.issubdtype(dtype, np.integer) and array.size:
        if np.issubdtype(array.dtype, np.floating):
            _check_finite(array, where)
            bad = array != np.round(array)
            if bad.any():
                row, value = _first(array, bad)
                raise TrainingError(
                    f"{where} must hold whole numbers for a {dtype.name} "
                    f"input; row {row} holds {value}"
                )
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = (array < info.min) | (array > info.max)
            row, value = _first(array, bad)
            raise TrainingError(f"{where}: row {row} holds {value}, which {dtype.name} cannot hold")
    return array.astype(dtype)


def _reshape(array: np.ndarray, where: str, want: list, done: list[str]) -> np.ndarray:
    rows = len(array)
    if list(array.shape[1:]) == want:
        return array
    fixed = all(isinstance(d, int) for d in want)
    if fixed and math.prod(array.shape[1:]) == math.prod(want):
        done.append(f"reshaped to {tuple(want)} per row")
        return array.reshape(rows, *want)
    matches = len(array.shape) == len(want) + 1 and all(
        d is None or d == n for d, n in zip(want, array.shape[1:])
    )
    if not matches:
        shown = tuple(want)
        raise TrainingError(f"{where}: rows shaped {array.shape[1:]}, not {shown}")
    return array


def _first(array: np.ndarray, bad: np.ndarray) -> tuple[int, object]:
    """(row, value) of the first True of `bad` in `array`."""
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    return at[0], array[at].item()


def _check_finite(array: np.ndarray, where: str) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        row, value = _first(array, ~finite)
        raise TrainingError(f"{where}: row {row} holds {value}")


def _check_ids(labels: np.ndarray, where: str, classes: int, ignore) -> None:
    """Class ids must be classes of the output, or the loss's ignore_class."""
    wrong = (labels < 0) | (labels >= classes)
    if ignore is not None:
        wrong &= labels != ignore
    if np.any(wrong):
        row, value = _first(labels, wrong)
        also = f" (or {ignore}, ignored)" if ignore is not None else ""
        raise TrainingError(
            f"{where} holds labels outside 0..{classes - 1}{also}: row {row} holds {value}"
        )


def check_target(array: np.ndarray, where: str, loss: str) -> None:
    """Targets inside their loss's domain (see the module docstring)."""
    if loss in BINARY_LOSSES:
        bad = (array < 0) | (array > 1)
        if bad.any():
            row, value = _first(array, bad)
            raise TrainingError(
                f"{where} holds targets outside [0, 1], which {loss} needs: "
                f"row {row} holds {value} (scale or threshold the targets, or choose "
                "a loss for this range)"
            )
    elif loss in CATEGORICAL_LOSSES and array.ndim >= 2:
        bad = (array < 0) | (array > 1)
        sums = array.sum(axis=-1, dtype=np.float64)
        wrong_sum = (np.abs(sums - 1) > ROW_SUM_TOLERANCE) & (sums != 0)
        if bad.any() or wrong_sum.any():
            if bad.any():
                row = _first(array, bad)[0]
            else:
                row = int(np.argwhere(wrong_sum)[0][0])
            raise TrainingError(
                f"{where} holds targets that are not one-hot rows, which "
                f"{loss} needs: row {row} is {_row(array[row])} (give one-hot rows, "
                "or class ids with sparse_categorical_crossentropy)"
            )


def _row(row: np.ndarray) -> str:
    flat = np.asarray(row).reshape(-1)
    shown = ", ".join(f"{v:g}" for v in flat[:10])
    return f"[{shown}{', ...' if flat.size > 10 else ''}]"
