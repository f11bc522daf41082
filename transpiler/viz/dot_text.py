"""What the model diagram and the ONNX diagram share about the DOT text they write:
the font, the layout directions, and how text from a user or a file is made printable
before it reaches a label or a tooltip.
"""

from __future__ import annotations

import graphviz

RANKDIRS = ("TB", "LR", "BT", "RL")

FONT = "Helvetica"


def printable(text: str, replacement: str | None = None) -> str:
    """`text` with every non-printable character (newlines and tabs included) written as
    `\\xNN`, or replaced by `replacement` when one is given. A name that is not valid
    UTF-8 (protobuf then hands over bytes) is decoded with replacement characters."""
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if replacement is None else replacement
        for c in text
    )


def tooltip(text: str, limit: int, replacement: str | None = None) -> str:
    """A plain (non-HTML) attribute value: at most `limit` characters of `text`, made
    printable (see `printable`), with backslashes made literal."""
    return graphviz.escape(printable(text[:limit], replacement))
