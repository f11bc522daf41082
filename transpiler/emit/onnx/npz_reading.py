"""Reading .npz and .npy arrays a user hands ktrans, checked before they are read.

`np.load` trusts the file: an .npy header may declare a shape of 10^12 values, and an
.npz member (a zip entry, possibly deflated) may inflate to gigabytes. Here each array's
header is read first (a few hundred bytes, inflated from the start of its member only),
and the caller checks the declared shapes against the ones it expects; only then are the
values read, each exactly as large as declared. Also refused before reading: arrays of
anything but numbers (strings, objects, records), members that are not .npy arrays or
appear twice, and an array whose declared size disagrees with its member's or file's
size (a damaged or hand-made file).
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transpiler.errors import KdlError, KdlErrors
from transpiler.input_files import open_regular

NUMBERS = "fiub"  # numpy kinds: float, signed, unsigned, bool
ANY_SIZE = 1 << 50  # the file's own size is not the limit; the declared shapes are
MAX_TEXT_BYTES = 1 << 20
DAMAGED = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
    NotImplementedError, KeyError, tokenize.TokenError, SyntaxError,
)  # numpy parses a header with tokenize and literal_eval  # fmt: skip


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def read_header(f, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of the .npy array `f` starts with."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except DAMAGED as e:
        _fail(f"{where} is not a readable .npy array ({e})")
    return tuple(shape), dtype, f.tell()


def numbers_only(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in NUMBERS or dtype.hasobject:
        _fail(f"{where} holds {dtype} values, not numbers")


def read_npz(
    path: str | Path,
    what: str,
    check: Callable[[dict[str, tuple]], None],
    text: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, keyed by name. `check(shapes)` sees every array's
    declared shape first and raises to refuse them (an unreadable or non-.npy member is
    refused before it). Members named in `text` may hold a string (a checkpoint's JSON
    `meta`) of at most MAX_TEXT_BYTES; all others hold numbers."""
    where = f"{what}: {path}"
    fd, _ = open_regular(path, what, ANY_SIZE)
    with os.fdopen(fd, "rb") as f:
        try:
            archive = zipfile.ZipFile(f)
        except DAMAGED as e:
            _fail(f"{where} is not an .npz archive ({e})")
        with archive:
            infos = _members(archive, where)
            shapes, dtypes = {}, {}
            for key, info in infos.items():
                try:
                    with archive.open(info) as member:
                        shape, dtype, header = read_header(member, f"{where}: '{key}'")
                    if key in text and dtype.kind in "US":
                        if math.prod(shape) * dtype.itemsize > MAX_TEXT_BYTES:
                            _fail(f"{where}: '{key}' is over {MAX_TEXT_BYTES:,} bytes of text")
                    else:
                        numbers_only(dtype, f"{where}: '{key}'")
                except DAMAGED as e:
                    _fail(f"{where}: '{key}' cannot be read ({e})")
                declared = header + math.prod(shape) * dtype.itemsize
                if declared != info.file_size:
                    _fail(
                        f"{where}: '{key}' declares {declared:,} bytes but its member holds "
                        f"{info.file_size:,}: the archive is damaged"
                    )
                shapes[key], dtypes[key] = shape, dtype
            check(shapes)
            out = {}
            for key, info in infos.items():
                try:
                    with archive.open(info) as member:
                        out[key] = np.lib.format.read_array(member, allow_pickle=False)
                except DAMAGED as e:
                    _fail(f"{where}: '{key}' cannot be read ({e})")
    return out


def _members(archive: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    out: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        if not info.filename.endswith(".npy"):
            _fail(f"{where} holds '{info.filename}', which is not an .npy array")
        key = info.filename[: -len(".npy")]
        if key in out:
            _fail(f"{where} holds '{key}' twice: the archive is damaged")
        out[key] = info
    return out


def read_npy(path: str | Path, what: str, check: Callable[[tuple, np.dtype], None]) -> np.ndarray:
    """One .npy file: `check(shape, dtype)` sees the header first (and raises to refuse),
    and the file must be as large as its header declares."""
    where = f"{what}: {path}"
    fd, size = open_regular(path, what, ANY_SIZE)
    with os.fdopen(fd, "rb") as f:
        shape, dtype, header = read_header(f, where)
        declared = header + math.prod(shape) * dtype.itemsize
        if declared != size:
            _fail(
                f"{where} declares {declared:,} bytes (shape {shape}, {dtype}) but the file "
                f"is {size:,} bytes: it is damaged or not an .npy file"
            )
        check(shape, dtype)
        numbers_only(dtype, where)
        f.seek(0)
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except DAMAGED as e:
            _fail(f"{where} cannot be read ({e})")
