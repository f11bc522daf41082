"""A small image folder with every format and mode the readers meet, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (file name, Pillow mode, size (width, height), format)
SAMPLES = {
    "cat": [
        ("a.png", "RGB", (13, 9), "PNG"),
        ("b.png", "L", (5, 7), "PNG"),
        ("c.jpg", "RGB", (16, 12), "JPEG"),
        ("d.JPEG", "L", (9, 9), "JPEG"),
        ("nested/e.bmp", "RGB", (6, 11), "BMP"),
        ("notes.txt", None, None, None),
    ],
    "dog": [
        ("a.gif", "P", (10, 10), "GIF"),
        ("b.png", "RGBA", (12, 8), "PNG"),
        ("c.png", "P", (7, 5), "PNG"),
        ("d.png", "I;16", (8, 8), "PNG"),
    ],
    "emu": [
        ("a.png", "LA", (9, 6), "PNG"),
        ("b.bmp", "L", (4, 4), "BMP"),
        ("c.png", "RGB", (3, 17), "PNG"),
        ("d.png", "1", (8, 8), "PNG"),
    ],
}


def write_image_folder(root: Path, seed: int = 0) -> Path:
    """Writes the SAMPLES folder under `root` and returns it."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, files in SAMPLES.items():
        for name, mode, size, fmt in files:
            path = root / label / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if mode is None:
                path.write_text("not an image")
                continue
            width, height = size
            if mode == "I;16":
                image = Image.fromarray(rng.integers(0, 65536, (height, width), np.uint16))
            else:
                pixels = rng.integers(0, 256, (height, width, 3), np.uint8)
                image = Image.fromarray(pixels, "RGB").convert(mode)
            image.save(path, fmt)
    return root
