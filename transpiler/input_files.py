"""Opening the files a user names, safely: regular files only, size checked first.

`/dev/zero` never ends, `/dev/urandom` neither, a FIFO blocks the reader until someone
writes, and a directory is not data. Each file ktrans reads is opened without blocking
(O_NONBLOCK), checked with fstat on the open descriptor (so the file checked is the one
read), and refused unless it is a regular file within the size budget, before a byte is
read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from transpiler.errors import KdlError, KdlErrors, Span

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _fail(span: Span | None, message: str, hint: str | None = None):
    raise KdlErrors([KdlError(span, message, hint)])


def kind_of(mode: int) -> str:
    """'a FIFO (named pipe)', 'a directory', ... for a file that is not regular."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def open_regular(
    path: str | Path,
    what: str | None,
    limit: int,
    span: Span | None = None,
    size_hint: str | None = None,
) -> tuple[int, int]:
    """Opens `path` for reading and returns (descriptor, size); refuses anything but a
    regular file of at most `limit` bytes with an error that starts with `what` (the
    role of the file: "--weights", "import", ...; None for none). The caller closes the
    descriptor."""
    shown = path
    what = f"{what}: " if what else ""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        _fail(span, f"{what}no such file: {shown}", "check the path and its spelling")
    except IsADirectoryError:
        _fail(span, f"{what}{shown} is a directory, not a file")
    except OSError as e:
        _fail(span, f"{what}cannot read {shown}: {e.strerror or e}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _fail(span, f"{what}{shown} is {kind_of(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            _fail(
                span,
                f"{what}{shown} is {info.st_size:,} bytes; the limit is {limit:,}",
                size_hint,
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_regular(
    path: str | Path,
    what: str | None,
    limit: int,
    span: Span | None = None,
    size_hint: str | None = None,
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see `open_regular`); a file
    that grows while it is read is refused too."""
    fd, size = open_regular(path, what, limit, span, size_hint)
    what = f"{what}: " if what else ""
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(size)  # the size fstat gave: no buffer of `limit` bytes up front
            grew = f.read(1)
        except OSError as e:
            _fail(span, f"{what}cannot read {path}: {e.strerror or e}")
    if grew:
        _fail(span, f"{what}{path} grew while it was read; read it again when it is complete")
    return data


def check_regular(path: str | Path, what: str | None, limit: int, span: Span | None = None) -> int:
    """The size of a regular file of at most `limit` bytes, for readers (h5py, onnxruntime)
    that open the file by its name themselves."""
    fd, size = open_regular(path, what, limit, span)
    os.close(fd)
    return size
