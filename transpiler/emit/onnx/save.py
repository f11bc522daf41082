"""Writes ONNX files atomically: a temporary file in the target directory, then rename.
Models over 2 GB keep their weights in an external data file beside the .onnx."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx

from transpiler.errors import KdlError, KdlErrors

PROTOBUF_LIMIT = 2**31 - 1


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise KdlErrors([KdlError(None, f"cannot write {path}: no such directory {directory}")])
    large = model.ByteSize() > PROTOBUF_LIMIT
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    data_name = f"{path.name}.data"
    try:
        if large:
            tmp_data = f"{Path(tmp).name}.data"
            onnx.save_model(
                model,
                tmp,
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=tmp_data,
                size_threshold=1024,
            )
            # the .onnx names its data file: point it at the final name, then move both
            saved = onnx.load_model(tmp, load_external_data=False)
            for tensor in saved.graph.initializer:
                for entry in tensor.external_data:
                    if entry.key == "location":
                        entry.value = data_name
            onnx.save_model(saved, tmp)
            os.replace(directory / tmp_data, directory / data_name)
        else:
            with open(tmp, "wb") as f:
                f.write(model.SerializeToString())
        os.replace(tmp, path)
    except OSError as e:
        raise KdlErrors([KdlError(None, f"cannot write {path}: {e.strerror}")]) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Writes `data` to `path` through a temporary file and a rename."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise KdlErrors([KdlError(None, f"cannot write {path}: no such directory {directory}")])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise KdlErrors([KdlError(None, f"cannot write {path}: {e.strerror}")]) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
