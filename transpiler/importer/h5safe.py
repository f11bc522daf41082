"""Careful HDF5 reading for the importer: a Keras file may come from anywhere.

Every object is reached through hard links only (a soft or external link could point
into another file); a dataset is read only if it is not virtual (a view on other files),
has no external storage, uses only HDF5's built-in filters (no filter plugin is loaded
for it), holds numbers, and fits the file's byte budget (MAX_RATIO times the file's size:
a compressed dataset cannot inflate beyond it). Attributes are read within a size limit.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from transpiler.importer.errors import fail

MAX_RATIO = 64
BUILTIN_FILTERS = {1, 2, 3, 32000}  # deflate, shuffle, fletcher32, lzf


class H5Reader:
    """An open HDF5 file with a byte budget for the datasets read from it."""

    def __init__(self, f, where: str, size: int) -> None:
        self.file = f
        self.where = where
        self.budget = MAX_RATIO * max(size, 1) + 2**24

    def child(self, group, name: str):
        """`group[name]` through a hard link, else None (missing, or a link elsewhere)."""
        import h5py

        try:
            link = group.get(name, getlink=True)
        except (KeyError, ValueError, OSError):
            return None
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = type(link).__name__
            fail(
                self.where,
                f"refusing {group.name.rstrip('/')}/{name}: it is a {kind}, which may point "
                "into another file",
                "Keras writes plain groups and datasets; re-save the model with Keras",
            )
        try:
            return group[name]
        except (KeyError, ValueError, OSError) as e:
            fail(self.where, f"cannot read {group.name}/{name}: {e}")

    def names(self, group) -> list[str]:
        try:
            return list(group.keys())
        except (OSError, RuntimeError) as e:
            fail(self.where, f"cannot list {group.name}: {e}")

    def is_group(self, obj) -> bool:
        import h5py

        return isinstance(obj, h5py.Group)

    def read(self, dataset) -> np.ndarray:
        import h5py

        if not isinstance(dataset, h5py.Dataset):
            fail(self.where, f"{dataset.name} is not a dataset")
        from h5py import h5d

        path = dataset.name
        plist = dataset.id.get_create_plist()  # one look at the storage, for every check
        if plist.get_layout() == h5d.VIRTUAL:
            fail(self.where, f"refusing {path}: a virtual dataset (its data lives elsewhere)")
        if plist.get_external_count():
            fail(self.where, f"refusing {path}: its data is stored in external files")
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in BUILTIN_FILTERS:
                fail(
                    self.where,
                    f"refusing {path}: it needs HDF5 filter {code}, which is not built in",
                    "re-save the model with Keras (no compression filters)",
                )
        if dataset.dtype.kind not in "biuf":
            fail(self.where, f"{path} holds {dataset.dtype}, not numbers")
        nbytes = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize
        if nbytes > self.budget:
            fail(self.where, f"{path} would need {nbytes:,} bytes: more than the file can hold")
        self.budget -= nbytes
        try:
            return np.asarray(dataset[()])
        except (OSError, RuntimeError, ValueError) as e:
            fail(self.where, f"cannot read {path}: {e}")

    def text_attr(self, obj, name: str, limit: int) -> str | None:
        try:
            if name not in obj.attrs:
                return None
            value = obj.attrs[name]
        except (OSError, RuntimeError, TypeError) as e:
            fail(self.where, f"cannot read the attribute {name}: {e}")
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, bytes):
            if len(value) > limit:
                fail(self.where, f"the attribute {name} is larger than {limit:,} bytes")
            return value.decode("utf-8", "replace")
        if isinstance(value, str):
            if len(value) > limit:
                fail(self.where, f"the attribute {name} is larger than {limit:,} bytes")
            return value
        return None

    def text_list_attr(self, obj, name: str, limit: int = 2**20) -> list[str]:
        try:
            value = obj.attrs.get(name)
        except (OSError, RuntimeError, TypeError) as e:
            fail(self.where, f"cannot read the attribute {name}: {e}")
        if value is None:
            return []
        items = list(np.atleast_1d(value))
        if sum(len(v) for v in items if isinstance(v, (bytes, str))) > limit:
            fail(self.where, f"the attribute {name} is larger than {limit:,} bytes")
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]


@contextmanager
def open_h5(source, where: str, size: int):
    """An H5Reader on `source` (a path or a binary file object), read-only."""
    try:
        import h5py
    except ModuleNotFoundError:
        fail(where, "reading HDF5 needs the h5py package", "pip install h5py")
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError) as e:
        fail(where, f"not a readable HDF5 file: {e}")
    try:
        yield H5Reader(f, where, size)
    finally:
        f.close()


def read_text_attr(reader: H5Reader, name: str, limit: int, where: str) -> str | None:
    """A string attribute of the file's root (model_config, keras_version...)."""
    return reader.text_attr(reader.file, name, limit)
