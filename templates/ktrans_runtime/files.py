"""Files the run writes: whole or not at all, durable, with the user's permissions, and
only inside the output folder.

- `atomic_write` writes a temporary file beside the target, fsyncs it, renames it over
  the target and fsyncs the folder: a crash, a signal or a full disk leaves either the
  old file or the new one, never a broken one. A failed write removes its temporary and
  raises WriteError (one line, exit 1).
- Temporaries are named `.<name>.<pid>.<random>.tmp`. A run that was killed outright
  (`kill -9`) leaves its temporary behind; `remove_stale_temporaries` removes those of
  the names a run writes, when the process that made them is gone.
- Files get the mode `open()` would give them (0644 under umask 022), not the 0600 of
  `tempfile.mkstemp`.
- `inside` resolves a path that a train block names (CSVLogger's filename,
  ModelCheckpoint's filepath) within the output folder and refuses one that leaves it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import TrainingError, WriteError

TEMP_SUFFIX = ".tmp"


@functools.cache
def file_mode() -> int:
    """0o666 less the process's umask: the mode `open(path, "w")` creates files with."""
    return 0o666 & ~_umask()


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):  # Linux 4.7+: read it without setting it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_prefix(name: str) -> str:
    return f".{name}."


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Calls `write(file)` on a temporary file beside `path`, then puts it in place.
    Raises WriteError if any step fails (the temporary is removed, `path` unchanged)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_temp_prefix(path.name)}{os.getpid()}.",
            suffix=TEMP_SUFFIX,
            dir=path.parent,
        )
    except OSError as e:
        raise WriteError(path, e.strerror or str(e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), file_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise WriteError(path, e.strerror or str(e)) from None
    except BaseException:  # an exception from `write`, or Ctrl-C during start-up
        _remove(tmp)
        raise
    _fsync_folder(path.parent)
    return path


def _remove(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_folder(folder: Path) -> None:
    """Makes the rename durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, value) -> Path:
    return write_text(path, json.dumps(value, indent=1) + "\n")


def save_npz(path: Path, arrays: dict) -> Path:
    """An uncompressed .npz of `arrays` (numpy is imported by the caller's arrays)."""
    import numpy as np

    return atomic_write(path, lambda f: np.savez(f, **arrays))


def remove_stale_temporaries(paths: Iterable[Path]) -> list[Path]:
    """Removes the temporaries of the files at `paths` whose process is gone (a run
    killed with SIGKILL, or a machine that went down); returns what it removed.
    Temporaries of a process that is still running (another run writing there) stay."""
    by_folder: dict[Path, set[str]] = {}
    for path in paths:
        path = Path(path)
        by_folder.setdefault(path.parent, set()).add(path.name)
    removed = []
    for folder, names in by_folder.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(TEMP_SUFFIX):
                continue
            for name in names:
                prefix = _temp_prefix(name)
                if not entry.startswith(prefix):
                    continue
                pid = entry[len(prefix) : -len(TEMP_SUFFIX)].split(".")[0]
                path = folder / entry
                if not pid.isdigit() or path.is_symlink() or not path.is_file():
                    continue
                if not _running(int(pid)):
                    _remove(path)
                    removed.append(path)
                break
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: not ours to judge
    return True


def inside(out: Path, name: str, who: str) -> Path:
    """`out / name`, refused (TrainingError naming `who`) unless it stays within `out`:
    no absolute path, no `..` that climbs out, no symlink that leads out, no control
    character. `check` refuses such names in the .kdl file already; this is the run's
    own guard."""
    text = str(name)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise TrainingError(f"{who}: the path {text!r} is empty or holds a control character")
    if Path(text).is_absolute():
        raise TrainingError(
            f"{who}: '{text}' is an absolute path; name a file inside the output "
            f"folder ({out}), relative to it"
        )
    base = Path(out).resolve()
    target = (base / text).resolve()
    if target != base and base not in target.parents:
        raise TrainingError(
            f"{who}: '{text}' leads outside the output folder ({out}); name a file inside it"
        )
    if target == base:
        raise TrainingError(f"{who}: '{text}' names the output folder itself, not a file")
    return target
