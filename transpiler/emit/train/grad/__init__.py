"""Vector-Jacobian product rules for ONNX ops, one module per op family.

A rule receives the gradient context, the forward node and the gradients of the node's
outputs (None where an output gets no gradient), and returns the gradient of each input
(None for inputs with no gradient: integer inputs, shapes, axes). The engine
(transpiler/emit/train/autodiff.py) handles ordering, accumulation and pruning; rules only
do the local calculus. Broadcasting is undone with `g.unbroadcast(grad, input_name)`.

To add an op:

    @vjp("Sin")
    def _sin(g, node, grads):
        (dy,) = grads
        return [g.op("Mul", [dy, g.op("Cos", [node.input[0]])])]

Ops declared in NO_GRADIENT have no derivative (Shape, comparisons...); any other op
without a rule is an error naming the op and its layer, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable

RULES: dict[str, Callable] = {}
NO_GRADIENT = {
    "Shape",
    "Size",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "ArgMax",
    "ArgMin",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "ConstantOfShape",
    "RandomUniformLike",
    "RandomNormalLike",
    "Range",
    "TopK",
}


def vjp(*op_types: str):
    """Registers a rule for one or more op types."""

    def register(fn: Callable) -> Callable:
        for op in op_types:
            RULES[op] = fn
        return fn

    return register


def load_rules() -> dict[str, Callable]:
    """Imports every rule module (each registers its rules) and returns the table."""
    from transpiler.emit.train.grad import (  # noqa: F401
        conv,
        elementwise,
        linear,
        pool,
        sampling,
        shape,
    )

    return RULES
