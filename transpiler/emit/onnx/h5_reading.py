"""Reading an HDF5 weights file without trusting it.

An .h5 file can point outside itself: a dataset with *external storage* keeps its bytes in
another file (`external=[("/etc/passwd", 0, 40)]` reads that file as a bias), an *external
link* opens another HDF5 file, a *virtual dataset* maps others. It can also declare a
dataset of 10^12 values that a gzip filter inflates from a few kilobytes. So ktrans walks
the file itself, link by link, and every dataset is checked before a byte of it is read:

- external links, soft links, external storage and virtual datasets are refused;
- a dataset must hold numbers (not strings or compound records);
- a dataset may hold at most as many values as the model's largest weight;
- attributes are read only when small, and the walk visits a bounded number of objects
  at a bounded depth (hard links can make cycles).

Datasets come back as `Stored`: shape and dtype now, values on `read()`, which the
matching in keras_h5 calls only for the datasets it assigns to a layer.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from transpiler.errors import KdlError, KdlErrors

MAX_OBJECTS = 100_000  # groups and datasets visited in one file
MAX_DEPTH = 32  # groups inside groups
MAX_ATTRIBUTE_BYTES = 1 << 20
NUMBERS = "fiub"  # numpy kinds: float, signed, unsigned, bool


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


# what h5py raises on a damaged file (a bad heap signature, a truncated B-tree, ...)
DAMAGED = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@contextlib.contextmanager
def damaged_file(where: str, path: str):
    """h5py's errors from a damaged file as an input error naming the file and object."""
    try:
        yield
    except DAMAGED as e:
        _fail(f"{where}: cannot read {path or '/'}: the file is damaged ({e})")


class Stored:
    """A dataset that passed the checks and is not read yet."""

    def __init__(self, dataset, path: str, where: str) -> None:
        self.dataset = dataset
        self.path = path
        self.where = where
        self.shape = tuple(dataset.shape)
        self.dtype = dataset.dtype

    def read(self) -> np.ndarray:
        with damaged_file(self.where, self.path):
            return np.asarray(self.dataset[()])


class H5Reader:
    """Checked access to one open file: `where` names it in errors; `max_values` is the
    number of values of the model's largest weight."""

    def __init__(self, h5py, where: str, max_values: int) -> None:
        self.h5py = h5py
        self.where = where
        self.max_values = max(1, max_values)
        self.visited = 0

    def names(self, group, path: str) -> list[str]:
        with damaged_file(self.where, path):
            return sorted(group)

    def child(self, group, name: str, path: str):
        """`group[name]`, refusing a link that leaves the group's file or aliases."""
        with damaged_file(self.where, path):
            return self._child(group, name, path)

    def _child(self, group, name: str, path: str):
        link = group.get(name, getlink=True)
        if link is None:
            return None
        if isinstance(link, self.h5py.ExternalLink):
            _fail(
                f"{self.where}: {path} is an external link to {link.filename}:{link.path}; "
                "ktrans reads weights only from the file given",
                "save the weights into one file (model.save_weights)",
            )
        if isinstance(link, self.h5py.SoftLink):
            _fail(f"{self.where}: {path} is a soft link to {link.path}; ktrans reads no links")
        self.visited += 1
        if self.visited > MAX_OBJECTS:
            _fail(f"{self.where}: the file holds more than {MAX_OBJECTS:,} groups and datasets")
        obj = group[name]
        if isinstance(obj, self.h5py.Dataset):
            return self.dataset(obj, path)
        return obj

    def resolve(self, group, path: str, base: str):
        """A '/'-separated path below `group` (Keras 2 `weight_names`), link by link."""
        obj = group
        for part in (p for p in path.split("/") if p):
            if not isinstance(obj, self.h5py.Group):
                return None
            obj = self.child(obj, part, f"{base}/{path}")
            if obj is None:
                return None
        return obj

    def dataset(self, dataset, path: str) -> Stored:
        if dataset.external:
            files = ", ".join(str(e[0]) for e in dataset.external)
            _fail(
                f"{self.where}: dataset {path} uses HDF5 external storage (its values are in "
                f"{files}); ktrans reads weights only from the file given",
                "save the weights with model.save_weights",
            )
        if dataset.is_virtual:
            _fail(f"{self.where}: dataset {path} is a virtual dataset; ktrans does not read those")
        if dataset.dtype.kind not in NUMBERS:
            _fail(f"{self.where}: dataset {path} holds {dataset.dtype} values, not numbers")
        values = math.prod(dataset.shape or ())
        if values > self.max_values:
            _fail(
                f"{self.where}: dataset {path} declares shape {tuple(dataset.shape)} "
                f"({values:,} values), more than the largest weight of the model "
                f"({self.max_values:,} values)",
                "the file holds the weights of another model",
            )
        return Stored(dataset, path, self.where)

    def datasets(self, group, base: str) -> dict[str, Stored]:
        """Every dataset below `group`, keyed by its path below it (as visititems names
        them), walked without recursion and without following links."""
        out: dict[str, Stored] = {}
        stack = [(group, "", 0)]
        while stack:
            current, prefix, depth = stack.pop()
            if depth > MAX_DEPTH:
                _fail(f"{self.where}: groups nest more than {MAX_DEPTH} deep in {base}")
            for name in self.names(current, f"{base}/{prefix}"):
                sub = f"{prefix}{name}"
                obj = self.child(current, name, f"{base}/{sub}")
                if isinstance(obj, Stored):
                    out[sub] = obj
                elif isinstance(obj, self.h5py.Group):
                    stack.append((obj, f"{sub}/", depth + 1))
        return dict(sorted(out.items()))

    def attribute(self, obj, name: str, path: str):
        """A small attribute's value (None when absent)."""
        with damaged_file(self.where, path):
            if name not in obj.attrs:
                return None
            try:
                size = obj.attrs.get_id(name).get_storage_size()
            except RuntimeError:  # HDF5 reports an empty attribute's 0 bytes as an error
                size = 0
            if size > MAX_ATTRIBUTE_BYTES:
                _fail(
                    f"{self.where}: the attribute {name} of {path} is {size:,} bytes; the "
                    f"limit is {MAX_ATTRIBUTE_BYTES:,}"
                )
            return obj.attrs[name]
