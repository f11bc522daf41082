"""Keras's activation functions in torch, and the activation layers (ReLU, LeakyReLU,
ELU, Softmax, PReLU; Activation is in core.py).

Keras 3's torch backend computes each activation with the torch function named here
(relu6, hard_sigmoid = hardsigmoid, hard_silu = hardswish, gelu without approximation,
leaky_relu with slope 0.2, selu with torch's constants, which are Keras's).
"""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, Expr, call, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer

#: activation -> the torch function computing it
FUNCTIONS = {
    "relu": "torch.relu",
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "exponential": "torch.exp",
    "relu6": "nn.functional.relu6",
    "elu": "nn.functional.elu",
    "selu": "nn.functional.selu",
    "gelu": "nn.functional.gelu",
    "silu": "nn.functional.silu",
    "mish": "nn.functional.mish",
    "hard_sigmoid": "nn.functional.hardsigmoid",
    "hard_silu": "nn.functional.hardswish",
    "softplus": "nn.functional.softplus",
    "softsign": "nn.functional.softsign",
}

#: activation -> the torch.nn module computing it (softmax: over `dim`)
MODULES = {
    "linear": "nn.Identity",
    "relu": "nn.ReLU",
    "sigmoid": "nn.Sigmoid",
    "tanh": "nn.Tanh",
    "relu6": "nn.ReLU6",
    "elu": "nn.ELU",
    "selu": "nn.SELU",
    "gelu": "nn.GELU",
    "silu": "nn.SiLU",
    "mish": "nn.Mish",
    "hard_sigmoid": "nn.Hardsigmoid",
    "hard_silu": "nn.Hardswish",
    "softplus": "nn.Softplus",
    "softsign": "nn.Softsign",
}


def activation_expr(name: str, x: Expr, dim: int = -1) -> Expr:
    """Keras activation `name` applied to x (softmax over stored axis `dim`)."""
    if name == "linear":
        return x
    if name in FUNCTIONS:
        return call(FUNCTIONS[name], x)
    if name == "leaky_relu":
        return call("nn.functional.leaky_relu", x, num(0.2))
    if name in ("softmax", "log_softmax"):
        return call(f"torch.{name}", x, dim=num(dim))
    raise ValueError(f"no torch code for the activation '{name}'")


def activation_callable(name: str, e=None) -> Expr:
    """A callable computing activation `name` on the last axis (what a recurrent cell
    takes): a torch function, or a module."""
    if name in FUNCTIONS:
        return Atom(FUNCTIONS[name])
    if name == "leaky_relu":
        return call("nn.LeakyReLU", num(0.2))
    if name in ("softmax", "log_softmax"):
        return call("nn.Softmax" if name == "softmax" else "nn.LogSoftmax", dim=num(-1))
    return call("nn.Identity")


def activation_module(name: str, dim: int, e) -> Expr:
    """The constructor of a module computing activation `name` (softmax over `dim`)."""
    if name in MODULES:
        return call(MODULES[name])
    if name == "leaky_relu":
        return call("nn.LeakyReLU", num(0.2))
    if name in ("softmax", "log_softmax"):
        return call("nn.Softmax" if name == "softmax" else "nn.LogSoftmax", dim=num(dim))
    if name == "exponential":
        return call(e.helper("Exponential"))
    raise ValueError(f"no torch module for the activation '{name}'")


def last_axis(x) -> int:
    """Where the logical last axis of TValue x is stored (-1 when it is last)."""
    axis = x.physical_axis(-1)
    return -1 if axis == x.rank - 1 else axis


# ---------------------------------------------------------------- layers


@torch_layer("ReLU")
def relu(e, inputs):
    (x,) = inputs
    layer = e.layer
    top, slope, threshold = layer.max_value, layer.negative_slope, layer.threshold
    if top is None and not threshold:
        ctor = call("nn.LeakyReLU", num(float(slope))) if slope else call("nn.ReLU")
    elif top == 6 and not slope and not threshold:
        ctor = call("nn.ReLU6")
    else:
        kwargs = {"max_value": num(float(top))} if top is not None else {}
        if slope:
            kwargs["negative_slope"] = num(float(slope))
        if threshold:
            kwargs["threshold"] = num(float(threshold))
        ctor = call(e.helper("ReLU"), **kwargs)
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("LeakyReLU")
def leaky_relu(e, inputs):
    (x,) = inputs
    ctor = call("nn.LeakyReLU", num(float(e.layer.negative_slope)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("ELU")
def elu(e, inputs):
    (x,) = inputs
    alpha = float(e.layer.alpha)
    ctor = call("nn.ELU", num(alpha)) if alpha != 1.0 else call("nn.ELU")
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("Softmax")
def softmax(e, inputs):
    (x,) = inputs
    if x.mask is not None:
        e.fail(
            "its input carries a Keras mask (from Embedding(mask_zero=true)), which "
            "Keras's Softmax layer lines up with the wrong axes; use Activation(softmax)"
        )
    axes = e.layer.axis if isinstance(e.layer.axis, tuple) else (e.layer.axis,)
    dims = sorted({x.physical_axis(a) for a in axes})
    if len(dims) == 1:
        dim = -1 if dims[0] == x.rank - 1 else dims[0]
        ctor = call("nn.Softmax", dim=num(dim))
    else:
        ctor = call(e.helper("Softmax"), num(tuple(dims)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("PReLU")
def prelu(e, inputs):
    (x,) = inputs
    shape = next(w.shape for w in e.layer.weights if w.name == "alpha")
    args = [num(tuple(shape))]
    if x.perm is not None:
        args.append(num(tuple(x.perm)))
    module = e.module(call(e.helper("PReLU"), *args), {"alpha": ("alpha", "")})
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]
