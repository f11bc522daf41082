"""One error type for everything the user can get wrong, rendered with a caret.

A `KdlError` carries a `Span` (file, line, column, and where the culprit ends), a message
and an optional hint. Checks collect errors instead of raising the first one, so a run
reports every mistake in a file; `KdlErrors` is the exception that carries them out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from transpiler.limits import MAX_ERRORS_SHOWN, MAX_SOURCE_BYTES

TAB = "\t"
# C0 and C1 controls, DEL, the line and paragraph separators and the bidirectional
# overrides: from a name or a path they could move the cursor, recolour the terminal,
# forge a line of output or reorder what is shown ("Trojan source")
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character escaped (ESC as `\\x1b`, a newline as `\\x0a`,
    U+202E as `\\u202e`), safe to print to a terminal. Every message goes through it on
    its way out, so a name, a path or a string from the input cannot drive the terminal.
    `keep`: characters to leave as they are (a tab in a source line)."""
    if keep:
        return UNPRINTABLE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return UNPRINTABLE.sub(_escape, text)


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
        where = f"{printable(str(self.span))}: " if self.span else ""
        return f"{where}error: {printable(self.message)}"

    def render(self, sources: dict[str, str] | None = None, _lines=None) -> str:
        """`file:line:col: error: message`, the numbered source line, a caret under the
        culprit, and the hint (the layout rustc made familiar). Control characters are
        escaped; the source line is shown only from a .kdl file."""
        lines = [str(self)]
        hint = printable(self.hint) if self.hint else None
        text = _source_line(self.span, sources, _lines)
        if text is not None:
            number = str(self.span.line)
            pad = " " * len(number)
            width = 1
            if self.span.end_line == self.span.line and self.span.end_column:
                width = max(1, self.span.end_column - self.span.column)
            width = min(width, max(1, len(text) - self.span.column + 1))
            before = _caret_prefix(text, self.span.column)
            culprit = printable(text[self.span.column - 1 : self.span.column - 1 + width], TAB)
            lines.append(f" {pad} |")
            lines.append(f" {number} | {printable(text, TAB)}")
            lines.append(f" {pad} | " + before + "^" * max(1, len(culprit)))
            if hint:
                lines.append(f" {pad} = hint: {hint}")
        elif hint:
            lines.append(f"  = hint: {hint}")
        return "\n".join(lines)


@dataclass
class KdlErrors(Exception):
    """Every error found in one run, in source order."""

    errors: list[KdlError] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def render(self, sources: dict[str, str] | None = None) -> str:
        """Every error in source order, the first MAX_ERRORS_SHOWN in full, then a count."""
        ordered = sorted(self.errors, key=_sort_key)
        shown = ordered[:MAX_ERRORS_SHOWN]
        lines: dict[str, list[str] | None] = {}  # each file read and split once
        body = "\n".join(e.render(sources, lines) for e in shown)
        n = len(ordered)
        if n > len(shown):
            rest = n - len(shown)
            body += f"\n... and {rest:,} more error{'s' if rest != 1 else ''}"
        return f"{body}\n{n:,} error{'s' if n != 1 else ''}"


def _sort_key(error: KdlError) -> tuple:
    s = error.span
    return (s.file, s.line, s.column) if s else ("", 0, 0)


def _caret_prefix(text: str, column: int) -> str:
    # keep tabs so the caret lines up under the culprit; an escaped character is wider
    return "".join(c if c == "\t" else " " * len(printable(c)) for c in text[: column - 1])


def _source_line(span: Span | None, sources: dict[str, str] | None, cache=None) -> str | None:
    """The line `span` points at: from `sources` (text the caller holds), else read from
    the file, if it is a regular .kdl file within the size budget; never from any other
    file, so an error in an import of /etc/shadow cannot show its first line."""
    if span is None or span.line < 1:
        return None
    cache = {} if cache is None else cache
    if span.file not in cache:
        text = (sources or {}).get(span.file)
        if text is None:
            text = _read_kdl(span.file)
        cache[span.file] = text.splitlines() if text is not None else None
    lines = cache[span.file]
    if lines is None or span.line > len(lines):
        return None
    line = lines[span.line - 1]
    return line if len(line) <= 300 else line[:300]


def _read_kdl(file: str) -> str | None:
    if not file.endswith(".kdl"):
        return None
    from transpiler.input_files import read_regular

    try:
        return read_regular(file, "source", MAX_SOURCE_BYTES).decode("utf-8")
    except (KdlErrors, UnicodeDecodeError):
        return None


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
