"""Gradient clipping as Keras 3's BaseOptimizer does it (`_clip_gradients`), before weight
decay and the update: `clipnorm` per variable, `global_clipnorm` across all gradients,
`clipvalue` elementwise. Keras checks them in that order; the catalogue allows one."""

from __future__ import annotations


def clip_gradients(b, kwargs: dict, grads: dict[str, str]) -> dict[str, str]:
    """{param: gradient} -> {param: clipped gradient} (the same dict when no clipping)."""
    clipnorm = kwargs.get("clipnorm")
    global_clipnorm = kwargs.get("global_clipnorm")
    clipvalue = kwargs.get("clipvalue")
    if clipnorm and clipnorm > 0:
        return {p: clip_by_norm(b, g, clipnorm) for p, g in grads.items()}
    if global_clipnorm and global_clipnorm > 0:
        return clip_by_global_norm(b, grads, global_clipnorm)
    if clipvalue and clipvalue > 0:
        lo, hi = b.const(-clipvalue), b.const(clipvalue)
        return {p: b.op("Clip", [g, lo, hi]) for p, g in grads.items()}
    return grads


def clip_by_norm(b, g: str, clipnorm: float) -> str:
    """Keras's `_clip_by_norm`: g * c / max(||g||, c), with ||0|| taken as 0."""
    l2sum = b.op("ReduceSum", [b.op("Mul", [g, g])], keepdims=1)
    positive = b.op("Greater", [l2sum, b.const(0.0)])
    safe = b.op("Where", [positive, l2sum, b.const(1.0)])
    l2norm = b.op("Where", [positive, b.op("Sqrt", [safe]), l2sum])
    c = b.const(clipnorm)
    return b.op("Div", [b.op("Mul", [g, c]), b.op("Max", [l2norm, c])])


def clip_by_global_norm(b, grads: dict[str, str], clipnorm: float) -> dict[str, str]:
    """Keras's `clip_by_global_norm`: every gradient times c * min(1/n, 1/c), n the norm
    of all gradients together (NaN everywhere when n is not finite, as in Keras)."""
    squares = [b.op("ReduceSum", [b.op("Mul", [g, g])], keepdims=0) for g in grads.values()]
    total = squares[0] if len(squares) == 1 else b.op("Sum", squares)
    norm = b.op("Sqrt", [total])
    c = b.const(clipnorm)
    inverse = b.op("Reciprocal", [norm])
    scale = b.op("Mul", [c, b.op("Min", [inverse, b.const(1.0 / clipnorm)])])
    scale = b.op("Add", [scale, b.op("Sub", [norm, norm])])
    return {p: b.op("Mul", [g, scale]) for p, g in grads.items()}
