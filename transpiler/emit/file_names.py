"""File names made from names in a .kdl file (a model called `MnistCNN` gets
`train_MnistCNN.py`, `MnistCNN.onnx`, `runs/MnistCNN/`): short enough for any file system.

A model name may be as long as the author likes; a file name may not (255 bytes on most
file systems, and a temporary name adds to it). A name over MAX_STEM characters becomes
its first characters and a hash of the whole, so two long names still get two files.
"""

from __future__ import annotations

import hashlib

MAX_STEM = 100


def file_stem(name: str) -> str:
    """`name`, or for a long one its first characters, '_' and 12 hex digits of its hash."""
    if len(name.encode("utf-8")) <= MAX_STEM:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return f"{name[: MAX_STEM - 13]}_{digest}"
