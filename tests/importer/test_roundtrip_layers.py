# ruff: noqa: E501  (one table row per line)
"""Every catalogue layer on its own, with non-default arguments, through Keras and back:
a one-layer .kdl model -> codegen keras -> saved .keras -> `ktrans import` -> the same
graph (class, name, every argument, connections) and the same weights.

The cases are the layer tests' own (tests/layers: the one with the most arguments for
each layer, and every case that wraps a layer), plus the core layers below."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from tests.importer.roundtrip import assert_same_graph, load_text, save_generated
from tests.layers.keras_ref import CF, CL, Sub
from transpiler.layers import LAYERS

pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

CORE = [
    ("Dense", (6,), {"activation": "tanh", "use_bias": False, "kernel_initializer": "he_normal", "kernel_regularizer": "l2"}, [(5,)], CL),
    ("Activation", ("gelu",), {}, [(4, 3)], CL),
    ("Embedding", (50, 4), {"mask_zero": True, "embeddings_initializer": "glorot_uniform"}, [(7,)], CL),
    ("GaussianNoise", (0.3,), {"seed": 3}, [(5,)], CL),
    ("SpatialDropout1D", (0.2,), {}, [(6, 3)], CL),
    ("SpatialDropout2D", (0.2,), {"data_format": "channels_first"}, [(3, 4, 4)], CF),
    ("Dropout", (0.25,), {"noise_shape": [None, 1, 4]}, [(3, 4)], CL),
]  # fmt: skip
MODULES = [
    "activation_layers", "applications", "attention", "conv", "merging", "normalization",
    "pooling", "preprocessing", "recurrent", "reshaping",
]  # fmt: skip


def _cases() -> list:
    chosen: dict[str, tuple] = {}
    wrapping = []
    for module in MODULES:
        for case in importlib.import_module(f"tests.layers.test_{module}").CASES:
            name, args, kwargs = case[:3]
            if any(isinstance(v, Sub) for v in (*args, *kwargs.values())):
                wrapping.append(case)
            elif len(kwargs) > len(chosen.get(name, (None, (), {}))[2]) or name not in chosen:
                chosen[name] = case
    cases = list(chosen.values()) + wrapping + CORE
    return sorted(cases, key=lambda c: c[0])


CASES = _cases()


def test_every_catalogue_layer_has_a_case():
    assert {c[0] for c in CASES} == set(LAYERS)


def kdl_value(value) -> str:
    if isinstance(value, Sub):
        args = [kdl_value(a) for a in value.args]
        args += [f"{k}={kdl_value(v)}" for k, v in value.kwargs.items()]
        return f"{value.name}({', '.join(args)})"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(kdl_value(v) for v in value) + "]"
    return repr(value)


def one_layer_model(case) -> str:
    name, args, kwargs, shapes, data_format = case
    dtype = "int64" if name == "Embedding" else "float32"
    inputs = [
        f"    input x{i}: {dtype}[{', '.join(str(d) if isinstance(d, int) else '?' for d in s)}]"
        for i, s in enumerate(shapes)
    ]
    call = [kdl_value(a) for a in args] + [f"{k}={kdl_value(v)}" for k, v in kwargs.items()]
    tensors = ", ".join(f"x{i}" for i in range(len(shapes)))
    return (
        f"model One(data_format={data_format}) {{\n" + "\n".join(inputs) + "\n"
        f"    {name}({', '.join(call)})({tensors})\n}}\n"
    )


def case_id(case) -> str:
    name, args, kwargs = case[:3]
    return f"{name}-{len(args)}-{','.join(kwargs)}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layer_round_trips_through_keras(case, tmp_path: Path):
    from transpiler.importer import import_keras

    program, graph = load_text(one_layer_model(case))
    model, path = save_generated(graph, program, tmp_path, compile_it=False)
    imported = import_keras(path)
    assert_same_graph(graph, imported.graph)
    arrays = imported.weights()
    layer = next(la for la in graph.layers if la.family != "expression")
    for w, variable in zip(layer.weights or [], model.get_layer(layer.name).weights):
        np.testing.assert_array_equal(arrays[f"{layer.name}/{w.name}"], np.asarray(variable))
