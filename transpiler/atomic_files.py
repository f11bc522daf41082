"""Writing output files whole or not at all.

`atomic_write(path, write)` writes into a temporary file beside `path`, flushes it to the
disk (fsync), renames it over `path` and syncs the folder, so a crash, a full disk or a
kill leaves either the old file or the new one, never half of one. Around that:

- the file gets the mode a plain `open()` would give (0o666 less the umask: 0644 under
  umask 022), not the 0600 of `tempfile.mkstemp`;
- Ctrl-C (SIGINT) and SIGTERM remove the temporary file before the process ends;
- a temporary file of the same output left by a process that no longer runs (after a
  `kill -9`) is removed by the next write of that output.

Temporary names are `.<name>.<pid>-<random>.tmp`, so the process that owns each is known.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from transpiler.errors import KdlError, KdlErrors

_TEMP = re.compile(r"\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp\Z")
_MAX_TEMP_STEM = 160  # bytes of the output name kept in a temporary name


def _fail(message: str):
    raise KdlErrors([KdlError(None, message)])


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Calls `write(f)` on a temporary file and moves it into place as `path`."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        _fail(f"cannot write {path}: no such directory {directory}")
    remove_stale_temps(directory, path.name)
    tmp = temp_path(path)
    with removed_on_signals(tmp):
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(tmp, flags | getattr(os, "O_BINARY", 0), 0o666)  # the umask applies
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            sync_folder(directory)
        except OSError as e:
            _fail(f"cannot write {path}: {e.strerror or e}")
    return path


def temp_path(path: Path) -> Path:
    """A new temporary name beside `path`, owned by this process."""
    return path.with_name(f"{temp_prefix(path.name)}{os.getpid()}-{secrets.token_hex(4)}.tmp")


def temp_prefix(name: str) -> str:
    """`.<name>.` for the temporary files of the output `name` (a long name shortened
    with a hash, so the temporary name stays within the file system's limit)."""
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_TEMP_STEM:
        digest = hashlib.sha256(encoded).hexdigest()[:12]
        name = encoded[: _MAX_TEMP_STEM - 13].decode("utf-8", "ignore") + "_" + digest
    return f".{name}."


def remove_stale_temps(directory: Path, name: str) -> list[Path]:
    """Removes the temporary files of output `name` whose process is gone; returns them."""
    prefix = temp_prefix(name)
    removed = []
    try:
        entries = [e.name for e in os.scandir(directory) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.fullmatch(entry[len(prefix) - 1 :])
        if m is None or _running(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            (directory / entry).unlink()
            removed.append(directory / entry)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # another user's process, or cannot tell: leave its file alone
    return True


def sync_folder(directory: Path) -> None:
    """fsync a folder, so a rename in it is on the disk (where the system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder
    finally:
        os.close(fd)


class Terminated(SystemExit):
    """SIGTERM during a write: ends the process as the signal would (exit 143), after the
    temporary file is removed."""


@contextlib.contextmanager
def removed_on_signals(tmp: Path) -> Iterator[None]:
    """Removes `tmp` however the block ends: an error, Ctrl-C (KeyboardInterrupt) or
    SIGTERM, which is turned into an exception for the duration so cleanup runs."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGTERM)
        if current in (signal.SIG_DFL, None):

            def terminate(signum, frame):
                raise Terminated(128 + signum)

            previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
