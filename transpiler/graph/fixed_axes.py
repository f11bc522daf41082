"""Dynamic input axes fixed to the lengths of the data a model trains on.

A training step unrolls recurrent layers over a known number of timesteps, so a model
whose sequence axis is declared `?` cannot train as declared. The data can: every array
of an .npz file has one length per axis (Keras's fit on numpy arrays sees the same). So
`ktrans train` (and `ktrans codegen --target train --data`) build the graph with each
dynamic axis of an input replaced by the data's length; axes declared with a number must
match the data.
"""

from __future__ import annotations

from transpiler.graph.types import TensorType


class AxisMismatch(Exception):
    """The data does not fit the declared type (the message says how)."""


def fix_dynamic_axes(
    name: str, declared: TensorType, sample_shape: tuple[int, ...], named: dict[str, int]
) -> TensorType:
    """`declared` (batch axis first) with its dynamic axes set from `sample_shape` (the
    data's shape without the batch axis). `named` records the lengths given to named
    dynamic axes so far: inputs sharing an axis name must agree on its length."""
    dims = declared.shape[1:]
    if len(dims) != len(sample_shape):
        raise AxisMismatch(
            f"input '{name}' has {len(dims)} axes besides the batch; the data's '{name}' "
            f"has {len(sample_shape)} (shape {tuple(sample_shape)} after the batch axis)"
        )
    fixed = []
    for axis, (dim, length) in enumerate(zip(dims, sample_shape), start=1):
        if isinstance(dim, int):
            if dim != length:
                raise AxisMismatch(
                    f"input '{name}' axis {axis} is declared {dim}; the data's '{name}' "
                    f"has {length} there"
                )
            fixed.append(dim)
            continue
        if dim in named and named[dim] != length:
            raise AxisMismatch(
                f"axis '{dim}' is {named[dim]} long in one input's data and {length} in '{name}''s"
            )
        named[dim] = length
        fixed.append(length)
    return TensorType(declared.dtype, (declared.shape[0], *fixed))


def dynamic_input_shapes(graph, data_path) -> dict[str, tuple[int, ...]]:
    """The data's per-sample shapes of the graph's inputs that have dynamic axes besides
    the batch, read from the headers of an .npz file's arrays (nothing is loaded). An
    input's array is the one named after it, or Keras's x_train / x for a model with one
    input. Empty for other data files, or when no input has such axes."""
    from pathlib import Path

    if Path(data_path).suffix != ".npz":
        return {}
    dynamic = [
        v.name for v in graph.inputs if any(not isinstance(d, int) for d in v.type.shape[1:])
    ]
    if not dynamic:
        return {}
    headers = npz_shapes(data_path)
    shapes = {}
    for name in dynamic:
        keys = [name] + (["x_train", "x"] if len(graph.inputs) == 1 else [])
        found = next((k for k in keys if k in headers), None)
        if found is not None and len(headers[found]) >= 1:
            shapes[name] = tuple(headers[found][1:])
    return shapes


def npz_shapes(path) -> dict[str, tuple[int, ...]]:
    """Array name -> shape for each .npy member of an .npz file, from the headers only
    (unreadable files give {}: the training script reports them)."""
    import os
    import zipfile

    import numpy as np

    from transpiler.emit.onnx.npz_reading import DAMAGED
    from transpiler.errors import KdlErrors
    from transpiler.input_files import open_regular

    try:  # a regular file only: a FIFO named data.npz would block the read forever
        fd, _ = open_regular(path, None, 1 << 50)
    except KdlErrors:
        return {}
    out = {}
    try:
        with os.fdopen(fd, "rb") as file, zipfile.ZipFile(file) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        header = np.lib.format.read_array_header_1_0(f)
                    else:
                        header = np.lib.format.read_array_header_2_0(f)
                out[member[: -len(".npy")]] = tuple(header[0])
    except DAMAGED:
        return {}
    return out
