"""Helpers for the Keras-export tests: a graph's `codegen --target keras` model, random
Keras-layout weights, and the ONNX model's outputs on given weights."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from tests.emit.test_codegen_keras import import_path, predict, random_feeds, random_weights
from transpiler.emit.code.keras import generate_keras
from transpiler.graph import load_one

__all__ = [
    "flat",
    "keras_model",
    "load_graph",
    "onnx_outputs",
    "predict",
    "random_feeds",
    "random_weights",
]

_counter = itertools.count()


def load_graph(text: str, tmp_path: Path, name: str = "model"):
    src = tmp_path / f"{name}.kdl"
    src.write_text(text)
    return load_one(src)


def keras_model(program, graph, tmp_path: Path):
    """The model the generated Keras module builds (compiled when it has a train block)."""
    path = tmp_path / f"keras_twin_{next(_counter)}.py"
    path.write_text(generate_keras(graph, program, "model.kdl"))
    module = import_path(path)
    model = module.build_model()
    if hasattr(module, "compile_model"):
        module.compile_model(model)
    return model


def flat(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f"{layer}/{w}": a for layer, ws in weights.items() for w, a in ws.items()}


def onnx_outputs(proto, feeds: dict) -> list[np.ndarray]:
    from transpiler.runtime.session import create_session

    return create_session(proto).run(None, feeds)
