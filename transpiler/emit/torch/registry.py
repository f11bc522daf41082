"""The table of PyTorch emitters, one per layer class (and per expression class), filled
by the `@torch_layer` decorator in this package's family modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Emitter:
    """How one layer class becomes PyTorch: `emit(e, inputs) -> outputs`, where `e` is a
    transpiler.emit.torch.scope.LayerEmit (the layer, its one module attribute, forward
    statements, layouts) and inputs / outputs are TValues. `sets_masks`: the emitter sets
    its outputs' Keras masks itself; otherwise the outputs get Keras's default (the
    first input's mask on the first output for a layer that supports masking)."""

    emit: Callable
    sets_masks: bool = False


TORCH_LAYERS: dict[str, Emitter] = {}


def torch_layer(*names: str, sets_masks: bool = False):
    """Registers the decorated function as the emitter of the layer classes `names`
    (Keras class names, or expression class names such as "Unary")."""

    def register(fn: Callable) -> Callable:
        for name in names:
            if name in TORCH_LAYERS:
                raise ValueError(f"two PyTorch emitters for {name}")
            TORCH_LAYERS[name] = Emitter(fn, sets_masks)
        return fn

    return register
