"""Counter-based random numbers inside ONNX graphs (for Dropout and noise in training).

ONNX's random ops draw from a generator that lives in the session, so a resumed run
would not repeat an interrupted one. Here every number is a hash of (layer, step, element
index): murmur3's 64-bit finaliser over uint64 arithmetic, which onnxruntime runs.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xFF51AFD7ED558CCD
_M2 = 0xC4CEB9FE1A85EC53
_UINT64 = 13  # TensorProto.UINT64
_FLOAT = 1


def counter_uniform(ctx, like: str, layer_name: str) -> str:
    """Uniform [0, 1) float32 numbers with the shape of the value `like`."""
    b = ctx.b
    size = b.op("Size", [like])
    index = b.op("Range", [b.const(0, np.int64), size, b.const(1, np.int64)])
    index = b.op("Cast", [index], to=_UINT64)
    salt = zlib.crc32(layer_name.encode()) * _GOLDEN % 2**64
    step = b.op("Cast", [ctx.step_input], to=_UINT64)
    h = b.op("Mul", [index, b.const(_GOLDEN, np.uint64)])
    h = b.op("Add", [h, b.op("Mul", [step, b.const(_M2, np.uint64)])])
    h = b.op("BitwiseXor", [h, b.const(salt, np.uint64)])
    for mult in (_M1, _M2):
        h = b.op(
            "BitwiseXor", [h, b.op("BitShift", [h, b.const(33, np.uint64)], direction="RIGHT")]
        )
        h = b.op("Mul", [h, b.const(mult, np.uint64)])
    h = b.op("BitwiseXor", [h, b.op("BitShift", [h, b.const(33, np.uint64)], direction="RIGHT")])
    top = b.op("BitShift", [h, b.const(40, np.uint64)], direction="RIGHT")  # 24 bits
    u = b.op("Mul", [b.op("Cast", [top], to=_FLOAT), b.const(1.0 / 2**24)])
    return b.op("Reshape", [u, b.op("Shape", [like])])
