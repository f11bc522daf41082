"""The run's exceptions and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # data, device, checkpoint, a file that cannot be written, a NaN loss
EXIT_USAGE = 2  # argparse's


class TrainingError(Exception):
    """A problem reported in one line (`error: ...`), with exit code 1: bad data, a
    damaged checkpoint, a device that cannot run, a disk that is full."""


class WriteError(TrainingError):
    """A file could not be written (disk full, permissions, a file size limit); the
    temporary file is removed and whatever the path held before is left as it was."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason
