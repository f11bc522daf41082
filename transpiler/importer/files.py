"""Atomic writes for the importer's outputs (the .kdl text, the weights .npz): a
temporary file in the target directory, flushed to disk, then renamed over the target,
so an interrupted or failed import never leaves a half-written file. (ktrans's other
writers live in transpiler/emit/onnx/save.py, which imports onnx: the importer does not
need it.)"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from transpiler.errors import KdlError, KdlErrors


def atomic_write(path: str | Path, write: Callable) -> Path:
    """Calls `write(f)` on a binary temporary file, then renames it to `path`."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise KdlErrors([KdlError(None, f"cannot write {path}: no such directory {directory}")])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise KdlErrors([KdlError(None, f"cannot write {path}: {e.strerror}")]) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
