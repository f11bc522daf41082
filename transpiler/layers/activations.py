"""The activation functions (Keras 3 names) and the converter for `activation=` arguments."""

from __future__ import annotations

from transpiler.errors import suggest
from transpiler.layers.args import ArgError, Spec, describe, name_of

ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
)

ALIASES = {"swish": "silu", "hard_swish": "hard_silu", None: "linear"}


def activation(value) -> str:
    """`relu`, `"relu"`, `none` -> a canonical activation name ('linear' for none)."""
    if value is None:
        return "linear"
    if isinstance(value, Spec):
        raise ArgError(
            f"expected an activation name, got {describe(value)}",
            f"write activation={value.name}; activation arguments are layer options "
            f"(for example LeakyReLU(negative_slope=0.2))",
        )
    n = name_of(value)
    if n is None:
        raise ArgError(f"expected an activation name, got {describe(value)}")
    if n not in ACTIVATIONS and n not in ALIASES:
        raise ArgError(f"'{n}' is unknown", suggest(n, ACTIVATIONS))  # "Dense: activation 'x'"
    return ALIASES.get(n, n)
