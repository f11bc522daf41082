"""Keras 3 optimizer updates as ONNX arithmetic (their epsilons and update rules, which
differ from PyTorch's). The learning rate is the `lr` input, so schedules and
ReduceLROnPlateau are computed by the training loop; `step` counts steps done."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

OPTIMIZERS: dict[str, Callable] = {}


def optimizer(name: str):
    def register(fn):
        OPTIMIZERS[name] = fn
        return fn

    return register


@optimizer("SGD")
def _sgd(b, p, g, slot, kw):
    """p -= lr g; with momentum m = momentum m - lr g, p += m (nesterov: p += momentum m -
    lr g)."""
    lr = "lr"
    momentum = kw.get("momentum", 0.0)
    if not momentum:
        return b.op("Sub", [p, b.op("Mul", [g, lr])]), {}
    m = slot("momentum")
    new_m = b.op("Sub", [b.op("Mul", [m, b.const(momentum)]), b.op("Mul", [g, lr])])
    if kw.get("nesterov"):
        step = b.op("Sub", [b.op("Mul", [new_m, b.const(momentum)]), b.op("Mul", [g, lr])])
        return b.op("Add", [p, step]), {"momentum": new_m}
    return b.op("Add", [p, new_m]), {"momentum": new_m}


def apply_optimizer(b, config, params: dict[str, np.ndarray], grads: dict[str, str]):
    """Returns ({param: new value}, {slot input: initial array}, {slot input: new value})."""
    spec = config.optimizer
    fn = OPTIMIZERS.get(spec.name)
    if fn is None:
        raise NotImplementedError(f"the optimizer {spec.name} is not emitted yet")
    kw = spec.kwargs
    new_params, slots, new_slots = {}, {}, {}
    for name, array in params.items():
        g = grads[name]

        def slot(slot_name, init=0.0, _name=name, _array=array):
            key = f"slot:{_name}:{slot_name}"
            slots[key] = np.full(_array.shape, init, np.float32)
            return key

        new_p, updated = fn(b, name, g, slot, kw)
        new_params[name] = new_p
        for slot_name, value in updated.items():
            new_slots[f"slot:{name}:{slot_name}"] = value
    return new_params, slots, new_slots
