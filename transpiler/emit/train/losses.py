"""Keras 3 losses as ONNX arithmetic, reduced as Keras does ("sum_over_batch_size": the
mean of the per-sample losses), weighted per output, plus regularization penalties."""

from __future__ import annotations

from collections.abc import Callable

EPSILON = 1e-7  # keras.config.epsilon()

LOSSES: dict[str, Callable] = {}


def loss(name: str):
    def register(fn):
        LOSSES[name] = fn
        return fn

    return register


def _mean_last(b, x):
    return b.op("ReduceMean", [x, b.ints([-1], "axes")], keepdims=0)


def _sum_last(b, x):
    return b.op("ReduceSum", [x, b.ints([-1], "axes")], keepdims=0)


def _smooth(b, t, kwargs, classes):
    ls = kwargs.get("label_smoothing", 0.0)
    if not ls:
        return t
    return b.op("Add", [b.op("Mul", [t, b.const(1.0 - ls)]), b.const(ls / classes)])


@loss("categorical_crossentropy")
def _categorical_crossentropy(b, y, t, kwargs, shape):
    t = _smooth(b, t, kwargs, shape[-1])
    if kwargs.get("from_logits"):
        logp = b.op("LogSoftmax", [y], axis=-1)
    else:
        p = b.op("Div", [y, b.op("ReduceSum", [y, b.ints([-1], "axes")], keepdims=1)])
        p = b.op("Clip", [p, b.const(EPSILON), b.const(1.0 - EPSILON)])
        logp = b.op("Log", [p])
    return b.op("Neg", [_sum_last(b, b.op("Mul", [t, logp]))])


@loss("mean_squared_error")
def _mse(b, y, t, kwargs, shape):
    d = b.op("Sub", [y, t])
    return _mean_last(b, b.op("Mul", [d, d]))


@loss("mean_absolute_error")
def _mae(b, y, t, kwargs, shape):
    return _mean_last(b, b.op("Abs", [b.op("Sub", [y, t])]))


def total_loss(b, config, graph, predictions, targets, params):
    """The total loss value name and {output: its mean loss}."""
    per_output = {}
    weighted = []
    for name, spec in config.loss.items():
        fn = LOSSES.get(spec.name)
        if fn is None:
            raise NotImplementedError(f"the loss {spec.name} is not emitted yet")
        shape = graph.outputs[name].type.shape
        per_sample = fn(b, predictions[name], targets[name], spec.kwargs, shape)
        value = b.op("ReduceMean", [per_sample], keepdims=0)
        per_output[name] = value
        w = config.loss_weights.get(name, 1.0)
        weighted.append(value if w == 1.0 else b.op("Mul", [value, b.const(w)]))
    for pname, (_, trainable, spec) in params.items():
        reg = getattr(spec, "regularizer", None)
        if reg is None or not trainable:
            continue
        if reg.l1:
            weighted.append(
                b.op(
                    "Mul", [b.op("ReduceSum", [b.op("Abs", [pname])], keepdims=0), b.const(reg.l1)]
                )
            )
        if reg.l2:
            sq = b.op("Mul", [pname, pname])
            weighted.append(b.op("Mul", [b.op("ReduceSum", [sq], keepdims=0), b.const(reg.l2)]))
    total = weighted[0] if len(weighted) == 1 else b.op("Sum", weighted)
    return total, per_output
