"""Writes ONNX files atomically (transpiler/atomic_files.py: a temporary file in the target
directory, fsync, then rename; the umask's mode; no temporary left after Ctrl-C or
SIGTERM). Models over 2 GB keep their weights in an external data file beside the .onnx."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from transpiler.atomic_files import (
    atomic_write,
    remove_stale_temps,
    removed_on_signals,
    sync_folder,
    temp_path,
)
from transpiler.emit.onnx.pending import resolve
from transpiler.errors import KdlError, KdlErrors

PROTOBUF_LIMIT = 2**31 - 1


def save_model_parts(
    model: onnx.ModelProto, initializers: dict[str, np.ndarray], path: str | Path
) -> Path:
    """Writes a model whose initializers are still numpy arrays (or arrays being drawn,
    `PendingArray`s, each waited for when its turn comes), streaming their bytes.

    The file holds the serialized model, then a second `graph` field that carries only
    the initializers. Protobuf merges repeated occurrences of a singular message field,
    so every reader (onnx, onnxruntime) sees one graph with all of them; no 100 MB
    protobuf message is built or copied. Models over 2 GB go the external-data way.
    """
    size = sum(a.nbytes for a in initializers.values())
    if size + model.ByteSize() > PROTOBUF_LIMIT:
        from onnx import numpy_helper

        full = onnx.ModelProto()
        full.CopyFrom(model)
        full.graph.initializer.extend(
            numpy_helper.from_array(resolve(a), n) for n, a in initializers.items()
        )
        return save_model(full, path)
    head = model.SerializeToString()
    tensors = [_tensor_header(name, array) for name, array in initializers.items()]
    graph_len = sum(
        _field_len(5, len(h) + array.nbytes) for h, array in zip(tensors, initializers.values())
    )

    def write(f) -> None:
        f.write(head)
        f.write(_key(7, 2) + _varint(graph_len))
        for header, array in zip(tensors, initializers.values()):
            f.write(_key(5, 2) + _varint(len(header) + array.nbytes))
            f.write(header)
            f.write(memoryview(np.ascontiguousarray(resolve(array))).cast("B"))

    return _atomic(Path(path), write)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _field_len(field: int, payload: int) -> int:
    return len(_key(field, 2)) + len(_varint(payload)) + payload


_ONNX_TYPES = {
    np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3,
    np.dtype(np.int32): 6, np.dtype(np.int64): 7, np.dtype(np.bool_): 9,
    np.dtype(np.float16): 10, np.dtype(np.float64): 11, np.dtype(np.uint64): 13,
}  # fmt: skip


def _tensor_header(name: str, array: np.ndarray) -> bytes:
    """TensorProto fields before raw_data: dims (1), data_type (2), name (8), and the
    raw_data key and length (9); little-endian data follows."""
    out = bytearray()
    for d in array.shape:
        out += _key(1, 0) + _varint(int(d))
    out += _key(2, 0) + _varint(_ONNX_TYPES[array.dtype])
    encoded = name.encode("utf-8")
    out += _key(8, 2) + _varint(len(encoded)) + encoded
    out += _key(9, 2) + _varint(array.nbytes)
    return bytes(out)


def _atomic(path: Path, write) -> Path:
    return atomic_write(path, write)


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Writes a complete ModelProto atomically (external data beyond 2 GB)."""
    path = Path(path)
    large = sum(len(t.raw_data) for t in model.graph.initializer) > PROTOBUF_LIMIT - 2**24
    if not large:
        return _atomic(path, lambda f: f.write(model.SerializeToString()))
    # weights beyond protobuf's 2 GB go to <name>.data beside the model; the model file,
    # renamed into place last, is what makes the pair visible
    directory = path.parent if str(path.parent) else Path(".")
    remove_stale_temps(directory, path.name)
    tmp = temp_path(path)
    data = directory / f"{path.name}.data"
    with removed_on_signals(tmp):
        try:
            onnx.save_model(
                model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                location=data.name, size_threshold=1024,
            )  # fmt: skip
            for written in (data, tmp):
                with open(written, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            sync_folder(directory)
        except OSError as e:
            raise KdlErrors([KdlError(None, f"cannot write {path}: {e.strerror}")]) from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Writes `data` to `path` through a temporary file and a rename."""
    return _atomic(Path(path), lambda f: f.write(data))
