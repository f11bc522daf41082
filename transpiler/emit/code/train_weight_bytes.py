"""Where each weight's bytes lie in the serialized inference model, so a generated training
script writes the trained model by overwriting those byte ranges in a copy of the file
(and needs no `onnx` package)."""

from __future__ import annotations

import re

import onnx


def weight_offsets(proto: onnx.ModelProto, names: list[str]) -> tuple[bytes, dict]:
    """Serializes `proto` with each weight in `names` stored as little-endian raw_data and
    returns (bytes, {name: [offset, size]}): where each weight's bytes sit in the file, so
    a copy with other values is written by overwriting those ranges."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    tensors = {t.name: t for t in proto.graph.initializer}
    raws = {}
    for name in names:
        t = tensors[name]
        raws[name] = onnx.numpy_helper.to_array(t).astype("<f4").tobytes()
        t.ClearField("float_data")
        t.raw_data = raws[name]
    data = proto.SerializeToString()
    offsets = {}
    for name in names:
        offsets[name] = [_raw_data_offset(data, name, raws[name]), len(raws[name])]
    return data, offsets


def _raw_data_offset(data: bytes, name: str, raw: bytes) -> int:
    """Where the raw_data of the initializer `name` starts in the serialized model.

    A TensorProto is serialized in field order, and one made by numpy_helper.from_array
    has no field between its name (8) and its raw_data (9); so the record holds the name's
    tag, length and bytes, then raw_data's tag and length, then the values."""
    encoded = name.encode()
    head = b"\x42" + _varint(len(encoded)) + encoded + b"\x4a" + _varint(len(raw))
    found = [m.end() for m in re.finditer(re.escape(head), data)]
    found = [at for at in found if data[at : at + len(raw)] == raw]
    if len(found) != 1:
        raise AssertionError(f"cannot locate the bytes of the weight {name}")
    return found[0]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
