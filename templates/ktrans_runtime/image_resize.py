"""Bilinear and nearest-neighbour resizing as Keras 3 does it with the torch backend.

`keras.ops.image.resize(..., interpolation="bilinear")` calls torch's
`F.interpolate(mode="bilinear", align_corners=False, antialias=False)`: half-pixel
centres, no antialiasing, coordinates below 0 clamped to 0, the second neighbour clamped
to the last row or column. torch computes in float32, and the rounding of the source
coordinate decides the weights, so it is reproduced here step by step:

    scale = float32(in) / float32(out)
    real  = max(fma(scale, out_index + 0.5, -0.5), 0)        (one rounding)
    i0    = min(floor(real), in - 1);  i1 = min(i0 + 1, in - 1)
    w1    = real - i0;  w0 = 1 - w1

Rows are interpolated along the width first, then the two rows along the height. The
result matches Keras's to a few float32 units in the last place (a fused multiply-add
in torch's compiled kernel may round once where numpy rounds twice); the tests hold it
to 1e-5 relative. numpy only: no torch at run time.
"""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("bilinear", "nearest")
_F32 = np.float32


def _linear_indices(out_size: int, in_size: int):
    """(i0, i1, w0, w1) for each output index along one axis."""
    if out_size == in_size:  # torch copies: the weights are exactly (1, 0)
        index = np.arange(out_size)
        return index, index, np.ones(out_size, _F32), np.zeros(out_size, _F32)
    scale = _F32(in_size) / _F32(out_size)
    centres = np.arange(out_size, dtype=_F32) + _F32(0.5)
    real = (np.float64(scale) * centres.astype(np.float64) - 0.5).astype(_F32)
    real = np.maximum(real, _F32(0))
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    w1 = np.clip(real - i0.astype(_F32), 0, 1).astype(_F32)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (_F32(1) - w1).astype(_F32), w1


def _mix(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray, fused: str) -> np.ndarray:
    """wa * a + wb * b in float32, with the product named by `fused` not rounded."""
    if fused == "a":
        rounded = (b * wb).astype(_F32).astype(np.float64)
        exact = a.astype(np.float64) * wa.astype(np.float64)
    else:
        rounded = (a * wa).astype(_F32).astype(np.float64)
        exact = b.astype(np.float64) * wb.astype(np.float64)
    return (exact + rounded).astype(_F32)


def _nearest_indices(out_size: int, in_size: int) -> np.ndarray:
    """torch's 'nearest-exact' (Keras's "nearest"): floor((out_index + 0.5) * in / out)."""
    if out_size == in_size:
        return np.arange(out_size)
    scale = _F32(in_size) / _F32(out_size)
    centres = np.arange(out_size, dtype=_F32) + _F32(0.5)
    index = np.floor((centres * scale).astype(_F32)).astype(np.int64)
    return np.minimum(index, in_size - 1)


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear"):
    """`image` (height, width, channels), float32, resized to `size` (height, width)."""
    height, width = size
    image = np.asarray(image, _F32)
    if interpolation == "nearest":
        rows = _nearest_indices(height, image.shape[0])
        cols = _nearest_indices(width, image.shape[1])
        return image[rows][:, cols]
    if interpolation != "bilinear":
        raise ValueError(f"interpolation {interpolation!r}: expected one of {INTERPOLATIONS}")
    if (height, width) == image.shape[:2]:
        return image.copy()
    h0, h1, hw0, hw1 = _linear_indices(height, image.shape[0])
    c0, c1, cw0, cw1 = _linear_indices(width, image.shape[1])
    cw0, cw1 = cw0[None, :, None], cw1[None, :, None]
    top = _mix(image[h0][:, c0], image[h0][:, c1], cw0, cw1, "a")
    bottom = _mix(image[h1][:, c0], image[h1][:, c1], cw0, cw1, "a")
    return _mix(top, bottom, hw0[:, None, None], hw1[:, None, None], "b")
