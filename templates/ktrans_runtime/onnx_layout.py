"""Keras layout -> ONNX layout: the inference model's weights from Keras-layout arrays, by
running the bundle's Keras recipes (keras_export.py: ONNX state -> Keras) backwards.

A recipe part says how a box of a Keras weight is made from an ONNX state tensor: ops
that rearrange it (`reshape`, `transpose`, `take` of a permutation) and `sum`, which
adds up ONNX's two recurrent biases where Keras has one. Run backwards on the positions
of the state tensor (0, 1, 2, ...), the rearranging ops tell where each Keras value goes;
`sum` is undone by putting the Keras value in the first of the two halves and zero in
the other, as `ktrans build` lays them out. Values a recipe does not place stay zero:
ktrans checks, when it writes the bundle, that this rebuilds the initial weights' bytes
exactly, and leaves the export out otherwise (the torch engine then says why).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .keras_export import apply_ops


def _positions(shape: tuple, ops: list) -> np.ndarray:
    """Where each value of the recipe's result comes from: flat positions in the state
    tensor (`sum` keeps the first of the values it would add)."""
    flat = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return apply_ops(flat, ops, first_of_sums=True)


def state_shapes(recipes: Mapping[str, dict]) -> dict[str, tuple]:
    """{state tensor: its shape} for every state tensor the recipes read."""
    shapes: dict[str, tuple] = {}
    for recipe in recipes.values():
        for part in recipe["parts"]:
            shapes.setdefault(part["state"], tuple(part["shape"]))
    return shapes


def onnx_arrays(
    keras: Mapping[str, np.ndarray], recipes: Mapping[str, dict]
) -> dict[str, np.ndarray]:
    """{state tensor: float32 array in ONNX layout} from {"<layer>/<weight>": array}."""
    shapes = state_shapes(recipes)
    flat = {name: np.zeros(int(np.prod(s)), np.float32) for name, s in shapes.items()}
    for key, recipe in recipes.items():
        value = np.asarray(keras[key], np.float32)
        for part in recipe["parts"]:
            at = part.get("at")
            box = value if at is None else value[tuple(slice(lo, hi) for lo, hi in at)]
            positions = _positions(tuple(part["shape"]), part["ops"])
            flat[part["state"]][positions.reshape(-1)] = box.reshape(-1)
    return {name: flat[name].reshape(shapes[name]) for name in shapes}
