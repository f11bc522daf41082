"""What the data sources feed: the training model's inputs, described once.

A `Feed` is one input of the step model: a model input (`name` = `key` = the input's
name) or a target (`name` = "target:<output>", `key` = the output's name). `shape` is
one row's shape (no batch axis; None for a dynamic axis), `dtype` the numpy type the
model takes. The sources (image folders, CSV tables, .npy directories) look their data
up by `key` and return batches keyed by `name`.

`ArrayDataset` is the in-memory dataset (.npz archives, CSV tables): `size`,
`take(rows)`, `split(at)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data_errors import DataError


@dataclass(frozen=True)
class Feed:
    name: str  # the step model's input name
    key: str  # the name the data uses: the input's or the output's name
    shape: tuple  # one row, without the batch axis; None for a dynamic axis
    dtype: type  # numpy dtype

    @property
    def is_target(self) -> bool:
        return self.name != self.key

    def describe(self) -> str:
        """ "the input 'image'" or "the output 'label'"."""
        return f"the {'output' if self.is_target else 'input'} '{self.key}'"

    def wants(self) -> str:
        """ "float32 rows shaped (28, 28, 1)"."""
        return f"{np.dtype(self.dtype).name} rows shaped {tuple(self.shape)}"

    @property
    def classes(self) -> int:
        """The number of classes of a one-hot target (its last axis), else 0."""
        fixed = len(self.shape) == 1 and isinstance(self.shape[0], int)
        floating = np.issubdtype(self.dtype, np.floating)
        return self.shape[0] if self.is_target and fixed and floating else 0


def fits(shape: tuple, wanted: tuple) -> bool:
    """Whether a row shaped `shape` is what `wanted` asks (None matches any size)."""
    return len(shape) == len(wanted) and all(
        w is None or not isinstance(w, int) or s == w for s, w in zip(shape, wanted)
    )


def one_hot(ids: np.ndarray, classes: int, dtype, where: str) -> np.ndarray:
    """Class ids (n,) as one-hot rows; ids outside 0..classes-1 are an error."""
    ids = np.asarray(ids)
    bad = np.flatnonzero((ids < 0) | (ids >= classes))
    if bad.size:
        raise DataError(
            f"{where}: row {int(bad[0])} holds the class {ids[bad[0]]}, outside "
            f"0..{classes - 1} (the output has {classes} units)"
        )
    return np.eye(classes, dtype=dtype)[ids.astype(np.int64)]


class ArrayDataset:
    """Arrays with the same number of rows, by feed name."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        sizes = {name: len(a) for name, a in arrays.items()}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{name}: {n}" for name, n in sizes.items())
            raise DataError(f"--data: the arrays have different numbers of rows ({shown})")
        self.arrays = arrays
        self.size = next(iter(sizes.values()), 0)

    def take(self, rows) -> dict[str, np.ndarray]:
        return {name: a[rows] for name, a in self.arrays.items()}

    def split(self, at: int) -> tuple[ArrayDataset, ArrayDataset]:
        first = {name: a[:at] for name, a in self.arrays.items()}
        rest = {name: a[at:] for name, a in self.arrays.items()}
        return ArrayDataset(first), ArrayDataset(rest)
