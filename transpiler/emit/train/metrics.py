"""Keras metrics, as per-batch statistics the training loop averages over an epoch
(weighted by batch size, as Keras's mean metrics are)."""

from __future__ import annotations

from collections.abc import Callable

METRICS: dict[str, Callable] = {}


def metric(name: str):
    def register(fn):
        METRICS[name] = fn
        return fn

    return register


def _mean(b, x):
    return b.op("ReduceMean", [b.op("Cast", [x], to=1)], keepdims=0)


@metric("categorical_accuracy")
def _categorical_accuracy(b, y, t, kwargs):
    same = b.op("Equal", [b.op("ArgMax", [y], axis=-1), b.op("ArgMax", [t], axis=-1)])
    return _mean(b, same)


@metric("sparse_categorical_accuracy")
def _sparse_categorical_accuracy(b, y, t, kwargs):
    pred = b.op("ArgMax", [y], axis=-1, keepdims=0)
    label = b.op("Cast", [t], to=7)
    label = b.op("Reshape", [label, b.op("Shape", [pred])])
    return _mean(b, b.op("Equal", [pred, label]))


@metric("binary_accuracy")
def _binary_accuracy(b, y, t, kwargs):
    threshold = kwargs.get("threshold", 0.5)
    pred = b.op("Cast", [b.op("Greater", [y, b.const(threshold)])], to=1)
    return _mean(b, b.op("Equal", [pred, t]))


@metric("mean_squared_error")
def _mse(b, y, t, kwargs):
    d = b.op("Sub", [y, t])
    return b.op("ReduceMean", [b.op("Mul", [d, d])], keepdims=0)


@metric("mean_absolute_error")
def _mae(b, y, t, kwargs):
    return b.op("ReduceMean", [b.op("Abs", [b.op("Sub", [y, t])])], keepdims=0)


def batch_metrics(b, config, graph, predictions, targets) -> dict[str, str]:
    """{"metric:<output>:<log name>": value name} for every metric of every output."""
    out = {}
    for name, specs in config.metrics.items():
        if name not in targets:
            continue
        for spec in specs:
            fn = METRICS.get(spec.name)
            if fn is None:
                raise NotImplementedError(f"the metric {spec.name} is not emitted yet")
            out[f"metric:{name}:{spec.log_name}"] = fn(
                b, predictions[name], targets[name], spec.kwargs
            )
    return out
