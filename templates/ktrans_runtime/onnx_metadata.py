"""Adds metadata entries (`metadata_props`) to a serialized ONNX model without the onnx
package: a protobuf message may carry a repeated field anywhere, so appending encoded
entries of ModelProto's field 14 (`StringStringEntryProto {key = 1; value = 2}`) to the
file's bytes gives the same model with the entries added. The trained model keeps the
training data's class names this way (`ktrans.class_names`, JSON), beside the
`ktrans.model`/`ktrans.source` entries ktrans wrote.
"""

from __future__ import annotations

METADATA_PROPS = 14  # ModelProto.metadata_props
CLASS_NAMES = "ktrans.class_names"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def metadata_entries(props: dict[str, str]) -> bytes:
    """The encoded `metadata_props` entries of `props`, to append to a ModelProto."""
    out = b""
    for key, value in props.items():
        entry = _field(1, key.encode()) + _field(2, value.encode())
        out += _field(METADATA_PROPS, entry)
    return out
