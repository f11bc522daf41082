"""Write a `graphviz.Digraph` to disk, picking the format from the file suffix.

The file appears whole or not at all: output goes to a temporary file next to the
target and is moved into place with `os.replace`, so a failed or interrupted run
never leaves a truncated diagram behind (or clobbers a good one).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import graphviz

from transpiler.atomic_files import atomic_write
from transpiler.errors import KdlError, KdlErrors

# suffix -> Graphviz output format; None means "the DOT source itself"
FORMATS: dict[str, str | None] = {
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".dot": None,
    ".gv": None,
}


def render(dot: graphviz.Digraph, out_path: str | Path) -> Path:
    """Render `dot` to `out_path` (.svg, .png, .pdf, or .dot/.gv source) and return the path.

    Raises `KdlErrors` for an unknown suffix, a missing `dot` binary, a directory
    that does not exist or cannot be written, or `dot` itself failing.
    """
    path = Path(out_path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = f"'{suffix}'" if suffix else "no suffix"
        _fail(
            f"cannot write '{path}': unknown diagram format ({shown})",
            f"use one of: {', '.join(FORMATS)}",
        )
    if not path.parent.is_dir():
        _fail(f"cannot write '{path}': directory '{path.parent}' does not exist")

    fmt = FORMATS[suffix]
    if fmt is None:
        data = dot.source.encode("utf-8")
    else:
        data = _run_dot(dot, fmt)
    _write_atomic(path, data)
    return path


def _run_dot(dot: graphviz.Digraph, fmt: str) -> bytes:
    if fmt == "png":
        # Graphviz's 96 dpi default makes small labels blurry; anything the graph sets wins
        dot = dot.copy()
        dot.graph_attr.setdefault("dpi", "144")
    try:
        return dot.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        _fail(
            f"cannot render .{fmt}: the Graphviz 'dot' program was not found on PATH",
            "install Graphviz (e.g. `apt-get install graphviz` or `brew install graphviz`), "
            "or write a .dot file instead",
        )
    except graphviz.CalledProcessError as e:
        stderr = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else e.stderr
        first = next((ln.strip() for ln in (stderr or "").splitlines() if ln.strip()), "")
        _fail(
            f"Graphviz 'dot' failed to render .{fmt} (exit {e.returncode}): {first or 'no output'}"
        )
    except OSError as e:  # found but not runnable, e.g. no execute permission
        _fail(f"cannot run Graphviz 'dot': {e.strerror or e}")


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _fail(message: str, hint: str | None = None) -> NoReturn:
    raise KdlErrors([KdlError(None, message, hint)])
