"""Tensor types with a symbolic batch axis.

A shape always includes the batch axis at position 0. A dimension is an `int`, a `str`
(a named symbolic axis such as "batch" or "title_len", equal only to itself), or `None`
(unknown: what arithmetic on a symbolic axis gives).
"""

from __future__ import annotations

from dataclasses import dataclass

Dim = int | str | None

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32", "int8", "uint8")


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def with_shape(self, shape) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def __str__(self) -> str:
        return f"{self.dtype}{format_shape(self.shape)}"


def format_dim(d: Dim) -> str:
    if d is None:
        return "None"
    return str(d)


def format_shape(shape: tuple[Dim, ...], batch: str = "None") -> str:
    """Keras style: `(None, 28, 28, 1)`; symbolic axes other than batch by name."""
    parts = []
    for i, d in enumerate(shape):
        if i == 0 and d == "batch":
            parts.append(batch)
        else:
            parts.append(format_dim(d))
    inner = ", ".join(parts)
    return f"({inner},)" if len(parts) == 1 else f"({inner})"


def keras_shape(shape: tuple[Dim, ...]) -> str:
    """As Keras prints a shape in summaries and diagrams: every dynamic axis (the batch,
    `?` axes, named axes) is None, `(None, None, 64)`. The ONNX file keeps the names."""
    return format_shape(tuple(d if isinstance(d, int) else None for d in shape))


def dims_compatible(a: Dim, b: Dim) -> bool:
    """Two dims can be equal at run time: only two different known sizes cannot."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return True


def dims_equal_static(a: Dim, b: Dim) -> bool | None:
    """True/False when known, None when it depends on run-time sizes."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a is not None and a == b:
        return True
    return None


def broadcast_shapes(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """Numpy broadcasting; None when two known dims disagree."""
    out: list[Dim] = []
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    for x, y in zip(pa, pb):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif isinstance(x, int) and isinstance(y, int):
            if x != y:
                return None
            out.append(x)
        elif x == y or isinstance(x, int):
            out.append(x)
        elif isinstance(y, int):
            out.append(y)
        else:
            out.append(None)  # two different symbolic axes: either may be 1 at run time
    return tuple(out)


def num_elements(shape: tuple[Dim, ...]) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n
