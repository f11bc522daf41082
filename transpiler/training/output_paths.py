"""The paths a .kdl file names for training to write (CSVLogger's filename,
ModelCheckpoint's filepath, ...): each must stay inside the run's output folder.

A .kdl file is data someone may hand you; the training script it generates writes where
the file says. So a path is refused at `ktrans check` time, at its line and column, when
it could land anywhere else or cannot be created:

- absolute (`/etc/x`, `\\\\server\\x`, `C:x`) or with a `..` component;
- with a control character (NUL, newline, ESC, ...) or a backslash (a separator on
  Windows, so `..\\\\x` would escape there);
- a name (component) over MAX_PATH_COMPONENT_BYTES or a path over MAX_PATH_BYTES in
  UTF-8, or a last component that names no file (`x/`, `.`);
- a Python file or a folder of the bundle's code (`x.py`, `ktrans_runtime/...`);
- for a pattern (ModelCheckpoint's `{epoch:02d}`), a field that reaches into an object
  (`{epoch.real}`, `{loss[0]}`) or a format that pads past the name limit.

Every callback argument that names a file uses `output_path` as its converter.
"""

from __future__ import annotations

import re
from string import Formatter

from transpiler.errors import UNPRINTABLE as _CONTROL
from transpiler.layers.args import ArgError, describe
from transpiler.limits import MAX_PATH_BYTES, MAX_PATH_COMPONENT_BYTES

_DRIVE = re.compile(r"[A-Za-z]:")
_SPEC_NUMBER = re.compile(r"\d+")
HINT = 'write a path inside the output folder (--out), e.g. "logs/history.csv"'
CODE_SUFFIXES = (".py", ".pyc", ".pth", ".so")
CODE_FOLDERS = ("ktrans_runtime", "__pycache__")


def output_path(value, pattern: bool = False) -> str:
    """`value` if it is a safe relative path inside the output folder, else ArgError.
    `pattern`: the path is a str.format pattern filled in at run time (its fields are
    checked here, and the names are measured with the fields filled)."""
    if not isinstance(value, str) or not value:
        raise ArgError(f"expected a file path in quotes, got {describe(value)}")
    control = _CONTROL.search(value)
    if control:
        raise ArgError(
            f"holds the control character {control.group()!r}",
            "a file name is printable text",
        )
    if "\\" in value:
        raise ArgError("holds a backslash", "separate folders with '/'")
    if value.startswith("/") or _DRIVE.match(value):
        raise ArgError(f'"{value}" is an absolute path: it would be written anywhere', HINT)
    parts = value.split("/")
    if ".." in parts:
        raise ArgError(f'"{value}" goes up with "..": it would leave the output folder', HINT)
    if parts[-1] in ("", "."):
        raise ArgError(f'"{value}" names a folder, not a file', "end it with a file name")
    if parts[-1].endswith(CODE_SUFFIXES) or any(p in CODE_FOLDERS for p in parts):
        raise ArgError(
            f'"{value}" would overwrite the code of the training bundle',
            "name a data file: .csv, .keras, .h5, ...",
        )
    filled = _filled(value) if pattern else value
    _check_lengths(filled)
    return value


def _filled(pattern: str) -> str:
    """The pattern with every field filled with a typical value, to measure the names it
    makes; fields that are more than a plain name with a short format are refused."""
    try:
        fields = list(Formatter().parse(pattern))
    except ValueError as e:
        raise ArgError(f"is not a valid pattern: {e}") from None
    out = []
    for literal, field, spec, conversion in fields:
        out.append(literal)
        if field is None:
            continue
        if not field.isidentifier():
            raise ArgError(
                f"uses '{{{field}}}': a field is a plain name such as {{epoch}} or {{val_loss}}",
                "write {epoch:02d} or {val_loss:.4f}",
            )
        if conversion not in (None, "s", "r") or "{" in (spec or ""):
            raise ArgError(f"uses '{{{field}}}' with a conversion or nested field")
        widths = [int(n) for n in _SPEC_NUMBER.findall(spec or "")]
        if any(n > 64 for n in widths):
            raise ArgError(
                f"formats '{{{field}:{spec}}}' wider than 64 characters",
                "a width or precision of at most 64",
            )
        sample = 10_000 if field in ("epoch", "batch") else 0.123456789
        try:
            out.append(format(sample, spec or ""))
        except ValueError:
            out.append("x" * max(widths or [12]))
    return "".join(out)


def _check_lengths(path: str) -> None:
    size = len(path.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        raise ArgError(f"is {size:,} bytes long; the limit is {MAX_PATH_BYTES:,}")
    for part in path.split("/"):
        n = len(part.encode("utf-8"))
        if n > MAX_PATH_COMPONENT_BYTES:
            raise ArgError(
                f'has a name of {n:,} bytes ("{part[:24]}..."); a file name is at most '
                f"{MAX_PATH_COMPONENT_BYTES} bytes",
                "shorten it",
            )


def separator(value) -> str:
    """CSVLogger's separator: one character, as Python's csv module (and Keras) needs."""
    if (
        not isinstance(value, str)
        or len(value) != 1
        or value in '"\r\n'
        or (value != "\t" and _CONTROL.match(value))
    ):
        raise ArgError(
            f'expected one character such as "," or "\\t", got {describe(value)}',
        )
    return value
