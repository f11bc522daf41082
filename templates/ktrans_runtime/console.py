"""What reaches the terminal. Every message goes through `escape`, so a control
character in a name that came from outside (an array name, a path, a metric's
`name="..."`) is shown as an escape (`\\x1b`) instead of moving the cursor, clearing
the screen or forging a line of output."""

from __future__ import annotations

import sys
import unicodedata

# Control characters (Cc), format characters such as bidirectional overrides (Cf), and
# the Unicode line and paragraph separators (Zl, Zp)
_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp"))


def escape(text: object) -> str:
    """`str(text)` with each unsafe character written as Python writes it in a string
    literal (`\\n`, `\\x1b`, `\\u202e`); everything else unchanged."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to do
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE:
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


def error(message: str) -> None:
    """`error: <message>` on stderr, one line."""
    _line(sys.stderr, f"error: {message}")


def note(message: str) -> None:
    """`note: <message>` on stderr, one line."""
    _line(sys.stderr, f"note: {message}")


def info(message: str) -> None:
    """A line on stderr (what the run is doing)."""
    _line(sys.stderr, message)


def result(message: str) -> None:
    """A line on stdout (what the run produced)."""
    _line(sys.stdout, message)


def newline() -> None:
    """Ends a progress bar's line on stderr, before a message."""
    sys.stderr.write("\n")


def _line(stream, message: str) -> None:
    stream.write(escape(message) + "\n")
    stream.flush()
