"""Keras 3 losses as ONNX arithmetic (keras/src/losses/losses.py, with the torch backend's
crossentropies), reduced as the loss's `reduction` says (Keras's default
"sum_over_batch_size": the mean of the per-sample losses), weighted per output, plus
regularization penalties.

A loss registers `fn(b, y_pred, y_true, kwargs, shape) -> per-sample losses` (the output's
static shape, batch axis first), or `(per-sample losses, mask)` where a boolean mask drops
samples from the reduction as Keras's loss masks do (`ignore_class`).

Targets are fed as `target:<output>`, typed by `target_type`: like the output, except for
`sparse_categorical_crossentropy`, whose targets are int64 class ids shaped like the output
without its class axis (labels shaped (batch, 1) lose the trailing 1 before feeding).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from transpiler.graph.types import TensorType

EPSILON = 1e-7  # keras.config.epsilon()
FLOAT, INT64 = 1, 7  # ONNX element types
SPARSE = ("sparse_categorical_crossentropy",)

LOSSES: dict[str, Callable] = {}


def loss(name: str):
    def register(fn):
        LOSSES[name] = fn
        return fn

    return register


def target_type(spec, output_type: TensorType) -> TensorType:
    """The type of the `target:<output>` input for an output trained with `spec`."""
    if spec.name in SPARSE:
        return TensorType("int64", tuple(output_type.shape[:-1]))
    return output_type


def _axes(b, axis):
    return b.ints([axis], "axes")


def _mean(b, x, axis=-1):
    return b.op("ReduceMean", [x, _axes(b, axis)], keepdims=0)


def _sum(b, x, axis=-1, keepdims=0):
    return b.op("ReduceSum", [x, _axes(b, axis)], keepdims=keepdims)


def _op(b, op_type, *inputs, **attrs):
    return b.op(op_type, list(inputs), **attrs)


def _c(b, value):
    return b.const(value)


def _categorical_smooth(b, t, kwargs, classes):
    ls = kwargs.get("label_smoothing", 0.0)
    if not ls:
        return t
    if not isinstance(classes, int):
        raise NotImplementedError("label_smoothing needs a static number of classes")
    return _op(b, "Add", _op(b, "Mul", t, _c(b, 1.0 - ls)), _c(b, ls / classes))


def _binary_smooth(b, t, kwargs):
    ls = kwargs.get("label_smoothing", 0.0)
    if not ls:
        return t
    return _op(b, "Add", _op(b, "Mul", t, _c(b, 1.0 - ls)), _c(b, 0.5 * ls))


def _clip_eps(b, x, hi=1.0 - EPSILON):
    return _op(b, "Clip", x, _c(b, EPSILON), _c(b, hi))


def _log_probs(b, y, from_logits: bool, axis: int):
    """torch backend: log_softmax, or log(clip(y / sum(y), eps, 1 - eps))."""
    if from_logits:
        return _op(b, "LogSoftmax", y, axis=axis)
    p = _op(b, "Div", y, _sum(b, y, axis, keepdims=1))
    return _op(b, "Log", _clip_eps(b, p))


def _bce_elementwise(b, y, t, from_logits: bool):
    """torch's binary_cross_entropy(_with_logits), elementwise."""
    if from_logits:  # (1 - t) x + log(1 + exp(-x)), stable for large |x|
        one_minus_t = _op(b, "Sub", _c(b, 1.0), t)
        return _op(b, "Add", _op(b, "Mul", one_minus_t, y), _op(b, "Softplus", _op(b, "Neg", y)))
    p = _clip_eps(b, y)
    log_p = _op(b, "Log", p)
    log_q = _op(b, "Log", _op(b, "Sub", _c(b, 1.0), p))
    pos = _op(b, "Mul", t, log_p)
    neg = _op(b, "Mul", _op(b, "Sub", _c(b, 1.0), t), log_q)
    return _op(b, "Neg", _op(b, "Add", pos, neg))


@loss("binary_crossentropy")
def _binary_crossentropy(b, y, t, kw, shape):
    t = _binary_smooth(b, t, kw)
    return _mean(b, _bce_elementwise(b, y, t, kw.get("from_logits", False)), kw.get("axis", -1))


@loss("binary_focal_crossentropy")
def _binary_focal_crossentropy(b, y, t, kw, shape):
    t = _binary_smooth(b, t, kw)
    if kw.get("from_logits"):
        y = _op(b, "Sigmoid", y)
    bce = _bce_elementwise(b, y, t, False)
    one = _c(b, 1.0)
    one_minus_t = _op(b, "Sub", one, t)
    p_t = _op(b, "Add", _op(b, "Mul", t, y), _op(b, "Mul", one_minus_t, _op(b, "Sub", one, y)))
    focal = _op(b, "Pow", _op(b, "Sub", one, p_t), _c(b, kw.get("gamma", 2.0)))
    out = _op(b, "Mul", focal, bce)
    if kw.get("apply_class_balancing"):
        alpha = kw.get("alpha", 0.25)
        weight = _op(
            b, "Add", _op(b, "Mul", t, _c(b, alpha)), _op(b, "Mul", one_minus_t, _c(b, 1 - alpha))
        )
        out = _op(b, "Mul", weight, out)
    return _mean(b, out, kw.get("axis", -1))


@loss("categorical_crossentropy")
def _categorical_crossentropy(b, y, t, kw, shape):
    axis = kw.get("axis", -1)
    t = _categorical_smooth(b, t, kw, shape[-1])
    logp = _log_probs(b, y, kw.get("from_logits", False), axis)
    return _op(b, "Neg", _sum(b, _op(b, "Mul", t, logp), axis))


@loss("categorical_focal_crossentropy")
def _categorical_focal_crossentropy(b, y, t, kw, shape):
    axis = kw.get("axis", -1)
    t = _categorical_smooth(b, t, kw, shape[-1])
    if kw.get("from_logits"):
        y = _op(b, "Softmax", y, axis=axis)
    p = _clip_eps(b, _op(b, "Div", y, _sum(b, y, axis, keepdims=1)))
    cce = _op(b, "Mul", _op(b, "Neg", t), _op(b, "Log", p))
    modulating = _op(b, "Pow", _op(b, "Sub", _c(b, 1.0), p), _c(b, kw.get("gamma", 2.0)))
    weighting = _op(b, "Mul", modulating, _c(b, kw.get("alpha", 0.25)))
    return _sum(b, _op(b, "Mul", weighting, cce), axis)


@loss("sparse_categorical_crossentropy")
def _sparse_categorical_crossentropy(b, y, t, kw, shape):
    if kw.get("axis", -1) not in (-1, len(shape) - 1):
        raise NotImplementedError("sparse_categorical_crossentropy with axis other than -1")
    classes = shape[-1]
    if not isinstance(classes, int):
        raise NotImplementedError("sparse_categorical_crossentropy needs a static class count")
    t = _op(b, "Cast", t, to=INT64)
    ignore = kw.get("ignore_class")
    valid = None
    if ignore is not None:
        valid = _op(b, "Not", _op(b, "Equal", t, b.const(ignore, np.int64)))
        t = _op(b, "Where", valid, t, b.const(0, np.int64))
        y = _op(b, "Where", _op(b, "Unsqueeze", valid, _axes(b, -1)), y, _c(b, 0.0))
    one_hot = _op(
        b,
        "Cast",
        _op(
            b, "Equal", _op(b, "Unsqueeze", t, _axes(b, -1)), b.const(np.arange(classes), np.int64)
        ),
        to=FLOAT,
    )
    logp = _log_probs(b, y, kw.get("from_logits", False), -1)
    values = _op(b, "Neg", _sum(b, _op(b, "Mul", one_hot, logp)))
    if valid is None:
        return values
    return _op(b, "Where", valid, values, _c(b, 0.0)), valid


@loss("mean_squared_error")
def _mse(b, y, t, kw, shape):
    d = _op(b, "Sub", t, y)
    return _mean(b, _op(b, "Mul", d, d))


@loss("mean_absolute_error")
def _mae(b, y, t, kw, shape):
    return _mean(b, _op(b, "Abs", _op(b, "Sub", t, y)))


@loss("mean_absolute_percentage_error")
def _mape(b, y, t, kw, shape):
    denominator = _op(b, "Max", _op(b, "Abs", t), _c(b, EPSILON))
    diff = _op(b, "Abs", _op(b, "Div", _op(b, "Sub", t, y), denominator))
    return _op(b, "Mul", _c(b, 100.0), _mean(b, diff))


@loss("mean_squared_logarithmic_error")
def _msle(b, y, t, kw, shape):
    def log1(x):
        return _op(b, "Log", _op(b, "Add", _op(b, "Max", x, _c(b, EPSILON)), _c(b, 1.0)))

    d = _op(b, "Sub", log1(y), log1(t))
    return _mean(b, _op(b, "Mul", d, d))


@loss("huber")
def _huber(b, y, t, kw, shape):
    delta = kw.get("delta", 1.0)
    error = _op(b, "Sub", y, t)
    abs_error = _op(b, "Abs", error)
    half = _c(b, 0.5)
    quadratic = _op(b, "Mul", half, _op(b, "Mul", error, error))
    linear = _op(
        b, "Sub", _op(b, "Mul", _c(b, delta), abs_error), _op(b, "Mul", half, _c(b, delta * delta))
    )
    small = _op(b, "LessOrEqual", abs_error, _c(b, delta))
    return _mean(b, _op(b, "Where", small, quadratic, linear))


@loss("log_cosh")
def _log_cosh(b, y, t, kw, shape):
    x = _op(b, "Sub", y, t)
    soft = _op(b, "Softplus", _op(b, "Mul", x, _c(b, -2.0)))
    return _mean(b, _op(b, "Sub", _op(b, "Add", x, soft), _c(b, math.log(2.0))))


@loss("kl_divergence")
def _kl_divergence(b, y, t, kw, shape):
    t = _clip_eps(b, t, 1.0)
    y = _clip_eps(b, y, 1.0)
    return _sum(b, _op(b, "Mul", t, _op(b, "Log", _op(b, "Div", t, y))))


@loss("poisson")
def _poisson(b, y, t, kw, shape):
    log = _op(b, "Log", _op(b, "Add", y, _c(b, EPSILON)))
    return _mean(b, _op(b, "Sub", y, _op(b, "Mul", t, log)))


def _hinge_labels(b, t):
    """Keras's convert_binary_labels_to_hinge: 0/1 labels become -1/1 when every label of
    the batch is 0 or 1."""
    zero_or_one = _op(b, "Or", _op(b, "Equal", t, _c(b, 0.0)), _op(b, "Equal", t, _c(b, 1.0)))
    flags = _op(b, "Cast", zero_or_one, to=FLOAT)
    all_binary = _op(b, "Equal", _op(b, "ReduceMin", flags, keepdims=0), _c(b, 1.0))
    converted = _op(b, "Sub", _op(b, "Mul", _c(b, 2.0), t), _c(b, 1.0))
    return _op(b, "Where", all_binary, converted, t)


def _hinge_margin(b, y, t):
    t = _hinge_labels(b, t)
    return _op(b, "Max", _op(b, "Sub", _c(b, 1.0), _op(b, "Mul", t, y)), _c(b, 0.0))


@loss("hinge")
def _hinge(b, y, t, kw, shape):
    return _mean(b, _hinge_margin(b, y, t))


@loss("squared_hinge")
def _squared_hinge(b, y, t, kw, shape):
    m = _hinge_margin(b, y, t)
    return _mean(b, _op(b, "Mul", m, m))


@loss("categorical_hinge")
def _categorical_hinge(b, y, t, kw, shape):
    pos = _sum(b, _op(b, "Mul", t, y))
    neg_terms = _op(b, "Mul", _op(b, "Sub", _c(b, 1.0), t), y)
    neg = _op(b, "ReduceMax", neg_terms, _axes(b, -1), keepdims=0)
    return _op(b, "Max", _op(b, "Add", _op(b, "Sub", neg, pos), _c(b, 1.0)), _c(b, 0.0))


def _l2_normalize(b, x, axis):
    """keras.ops.normalize(order=2): x * min(rsqrt(sum(x^2)), 1 / eps)."""
    square_sum = _sum(b, _op(b, "Mul", x, x), axis, keepdims=1)
    inv_norm = _op(b, "Reciprocal", _op(b, "Sqrt", square_sum))
    return _op(b, "Mul", x, _op(b, "Min", inv_norm, _c(b, 1.0 / EPSILON)))


@loss("cosine_similarity")
def _cosine_similarity(b, y, t, kw, shape):
    axis = kw.get("axis", -1)
    product = _op(b, "Mul", _l2_normalize(b, t, axis), _l2_normalize(b, y, axis))
    return _op(b, "Neg", _sum(b, product, axis))


def _reduce(b, values, mask, reduction: str):
    """Keras's reduce_weighted_values without sample weights."""
    if mask is None:
        if reduction == "sum":
            return b.op("ReduceSum", [values], keepdims=0)
        return b.op("ReduceMean", [values], keepdims=0)
    flags = b.op("Cast", [mask], to=FLOAT)
    total = b.op("Cast", [b.op("Size", [flags])], to=FLOAT)
    valid = b.op("ReduceSum", [flags], keepdims=0)
    if reduction in ("sum_over_batch_size", "mean"):
        weight = divide_no_nan(b, total, valid)
        weighted = b.op("Mul", [values, b.op("Where", [mask, weight, b.const(0.0)])])
        return divide_no_nan(b, b.op("ReduceSum", [weighted], keepdims=0), total)
    weighted = b.op("ReduceSum", [b.op("Mul", [values, flags])], keepdims=0)
    if reduction == "sum":
        return weighted
    return divide_no_nan(b, weighted, valid)  # mean_with_sample_weight: the mask weighs


def divide_no_nan(b, x, y):
    """x / y, or 0 where y is 0 (keras.ops.divide_no_nan)."""
    zero = b.const(0.0)
    is_zero = b.op("Equal", [y, zero])
    safe = b.op("Where", [is_zero, b.const(1.0), y])
    return b.op("Where", [is_zero, zero, b.op("Div", [x, safe])])


def penalty_terms(b, x: str, reg) -> list[str]:
    """A Keras L1/L2/L1L2 regularizer on the value `x`: `l1 * sum(|x|)` and
    `l2 * sum(x^2)`, one scalar term each (none for a zero factor)."""
    terms = []
    if reg.l1:
        terms.append(
            b.op("Mul", [b.op("ReduceSum", [b.op("Abs", [x])], keepdims=0), b.const(reg.l1)])
        )
    if reg.l2:
        sq = b.op("Mul", [x, x])
        terms.append(b.op("Mul", [b.op("ReduceSum", [sq], keepdims=0), b.const(reg.l2)]))
    return terms


def with_keras_mask(b, prediction: str, mask: str | None) -> str | None:
    """The loss's own mask and the Keras mask `prediction` carries (a sequence output
    downstream of Embedding(mask_zero=true), transpiler.layers.masking), as Keras's
    Loss.__call__ combines them (`in_mask & out_mask`): masked timesteps drop out of the
    mean."""
    keras_mask = getattr(b, "masks", {}).get(prediction)
    if keras_mask is None:
        return mask
    return keras_mask if mask is None else b.op("And", [keras_mask, mask])


def total_loss(b, config, graph, predictions, targets, params, penalties=()):
    """The total loss value name and {output: its mean loss}. `penalties` are further
    scalar terms (activity regularization, see activity.py), added as Keras adds
    `model.losses`: after the outputs' losses, before the weight regularizers."""
    per_output = {}
    weighted = []
    for name, spec in config.loss.items():
        fn = LOSSES.get(spec.name)
        if fn is None:
            raise NotImplementedError(f"the loss {spec.name} is not emitted yet")
        shape = graph.outputs[name].type.shape
        result = fn(b, predictions[name], targets[name], spec.kwargs, shape)
        values, mask = result if isinstance(result, tuple) else (result, None)
        mask = with_keras_mask(b, predictions[name], mask)
        value = _reduce(b, values, mask, spec.kwargs.get("reduction", "sum_over_batch_size"))
        per_output[name] = value
        w = config.loss_weights.get(name, 1.0)
        weighted.append(value if w == 1.0 else b.op("Mul", [value, b.const(w)]))
    weighted.extend(penalties)
    for pname, (_, trainable, spec) in params.items():
        reg = getattr(spec, "regularizer", None)
        if reg is None or not trainable:
            continue
        weighted.extend(penalty_terms(b, pname, reg))
    total = weighted[0] if len(weighted) == 1 else b.op("Sum", weighted)
    return total, per_output
