"""One error type for everything the user can get wrong, rendered with a caret.

A `KdlError` carries a `Span` (file, line, column, and where the culprit ends), a message
and an optional hint. Checks collect errors instead of raising the first one, so a run
reports every mistake in a file; `KdlErrors` is the exception that carries them out.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class KdlError(Exception):
    """A mistake in a .kdl file (or on the command line) the user can fix."""

    span: Span | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}error: {self.message}"

    def render(self, sources: dict[str, str] | None = None) -> str:
        """`file:line:col: error: message`, the numbered source line, a caret under the
        culprit, and the hint (the layout rustc made familiar)."""
        lines = [str(self)]
        text = _source_line(self.span, sources)
        if text is not None:
            number = str(self.span.line)
            pad = " " * len(number)
            width = 1
            if self.span.end_line == self.span.line and self.span.end_column:
                width = max(1, self.span.end_column - self.span.column)
            width = min(width, max(1, len(text) - self.span.column + 1))
            lines.append(f" {pad} |")
            lines.append(f" {number} | {text}")
            lines.append(f" {pad} | " + _caret_prefix(text, self.span.column) + "^" * width)
            if self.hint:
                lines.append(f" {pad} = hint: {self.hint}")
        elif self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


@dataclass
class KdlErrors(Exception):
    """Every error found in one run, in source order."""

    errors: list[KdlError] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def render(self, sources: dict[str, str] | None = None) -> str:
        ordered = sorted(self.errors, key=_sort_key)
        body = "\n".join(e.render(sources) for e in ordered)
        n = len(ordered)
        return f"{body}\n{n} error{'s' if n != 1 else ''}"


def _sort_key(error: KdlError) -> tuple:
    s = error.span
    return (s.file, s.line, s.column) if s else ("", 0, 0)


def _caret_prefix(text: str, column: int) -> str:
    # keep tabs so the caret lines up under the culprit
    return "".join(c if c == "\t" else " " for c in text[: column - 1])


def _source_line(span: Span | None, sources: dict[str, str] | None) -> str | None:
    if span is None or span.line < 1:
        return None
    text = (sources or {}).get(span.file)
    if text is None:
        try:
            text = Path(span.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    lines = text.splitlines()
    if span.line > len(lines):
        return None
    line = lines[span.line - 1]
    return line if len(line) <= 300 else line[:300]


def suggest(name: str, candidates, kind: str = "") -> str | None:
    """`did you mean 'Dense'?` for the closest candidate, or None. A candidate that differs
    only in case wins (`Relu` -> 'relu', not the closer-looking 'elu')."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    if not close:
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        return None
    return f"did you mean '{close[0]}'?"


class ErrorSink:
    """Collects errors during a pass; `raise_if_any` ends the pass with all of them."""

    def __init__(self) -> None:
        self.errors: list[KdlError] = []

    def add(self, error: KdlError) -> None:
        self.errors.append(error)

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        self.errors.append(KdlError(span, message, hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise KdlErrors(list(self.errors))
