"""BatchNormalization and LayerNormalization in training mode, as plain ONNX arithmetic
(ReduceMean, Sub, Mul, Sqrt, Reciprocal...) that the VJP rules differentiate; ONNX's fused
normalization ops have no gradient rule.

Both work on the tensor as it is stored (`x.perm`): a channels-first CNN keeps its layout.
The weights are those of the inference lowering (transpiler/layers/normalization.py), so a
training step updates the initializers inference reads: BatchNormalization's are Keras's
1-D (n,) arrays untransformed, `<layer>/gamma`, `<layer>/beta`, `<layer>/moving_mean`,
`<layer>/moving_variance` (what inference's ONNX BatchNormalization reads when the channel
axis is stored at 1; where inference folds them into one scale and shift instead, the
training model keeps the four raw ones); LayerNormalization's see layer_norm_training.

Keras 3's BatchNormalization(training=True), layers/normalization/batch_normalization.py:
    mean, variance = moments(x, all axes but `axis`)        # biased variance
    moving_mean     <- moving_mean * momentum + mean * (1 - momentum)
    moving_variance <- moving_variance * momentum + variance * (1 - momentum)  # biased too
    y = (x - mean) * rsqrt(variance + epsilon) * gamma + beta
and only when the layer is trainable: a frozen layer (trainable=false) normalises with the
moving statistics even in training, and leaves them alone. The torch backend computes the
variance as E[x^2] - E[x]^2; this uses E[(x - mean)^2], the same value (and gradient) with
less cancellation.
"""

from __future__ import annotations

import numpy as np

from transpiler.emit.onnx.tensors import LTensor


def _on_axis(ctx, param: str, rank: int, axis: int, n: int) -> str:
    """A (n,) weight reshaped to broadcast on stored axis `axis`."""
    shape = [1] * rank
    shape[axis] = n
    return ctx.op("Reshape", [param, ctx.ints(shape)])


def _normalize(ctx, x: LTensor, centered: str, variance: str, epsilon: float, gamma, beta):
    """centered * rsqrt(variance + epsilon) * gamma + beta (gamma, beta optional)."""
    inv = ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [variance, ctx.const(epsilon)])])])
    if gamma is not None:
        inv = ctx.op("Mul", [inv, gamma])
    y = ctx.op("Mul", [centered, inv])
    if beta is not None:
        y = ctx.op("Add", [y, beta])
    return x.like(y)


def _batch_norm(ctx, layer, x: LTensor, batch_statistics: bool) -> LTensor:
    axis = x.physical_axis(layer.axis)
    logical_axis = layer.axis % x.rank
    n = x.type.shape[logical_axis]
    reduce = ctx.ints([a for a in range(x.rank) if a != axis], "axes")

    def param(name: str) -> str:
        return _on_axis(ctx, ctx.weight(name), x.rank, axis, n)

    gamma = param("gamma") if layer.scale else None
    beta = param("beta") if layer.center else None
    moving_mean = ctx.weight("moving_mean")
    moving_variance = ctx.weight("moving_variance")
    if not batch_statistics:
        centered = ctx.op("Sub", [x.name, param("moving_mean")])
        variance = param("moving_variance")
        return _normalize(ctx, x, centered, variance, layer.epsilon, gamma, beta)

    mean, centered, variance = _moments(ctx, x, reduce)
    flat = ctx.ints([n])
    keep, take = ctx.const(layer.momentum), ctx.const(1.0 - layer.momentum)
    for buffer, batch_value in ((moving_mean, mean), (moving_variance, variance)):
        batch_value = ctx.op("Reshape", [batch_value, flat])
        new = ctx.op("Add", [ctx.op("Mul", [buffer, keep]), ctx.op("Mul", [batch_value, take])])
        ctx.update_buffer(buffer, new)
    return _normalize(ctx, x, centered, variance, layer.epsilon, gamma, beta)


def _moments(ctx, x: LTensor, reduce: str) -> tuple[str, str, str]:
    """(mean, x - mean, variance) over the `reduce` axes (keepdims). With a Keras mask on
    x, Keras's masked moments (BatchNormalization._moments): the mask, expanded on the
    last axis and broadcast to x, selects the entries; sums are divided by the count plus
    Keras's epsilon 1e-7. The normalisation then applies to every entry."""
    if x.mask is None:
        mean = ctx.op("ReduceMean", [x.name, reduce], keepdims=1)
        centered = ctx.op("Sub", [x.name, mean])
        variance = ctx.op("ReduceMean", [ctx.op("Mul", [centered, centered]), reduce], keepdims=1)
        return mean, centered, variance
    keep = ctx.op("Unsqueeze", [x.mask, ctx.ints([-1], "axes")])  # logical (..., 1)
    if x.perm is not None:
        keep = ctx.op("Transpose", [keep], perm=list(x.perm))
    keep = ctx.op("Expand", [keep, ctx.op("Shape", [x.name])])
    zero = ctx.const(0.0)
    count = ctx.op("ReduceSum", [ctx.op("Cast", [keep], to=1), reduce], keepdims=1)
    count = ctx.op("Add", [count, ctx.const(1e-7)])
    total = ctx.op("ReduceSum", [ctx.op("Where", [keep, x.name, zero]), reduce], keepdims=1)
    mean = ctx.op("Div", [total, count])
    centered = ctx.op("Sub", [x.name, mean])
    kept = ctx.op("Where", [keep, centered, zero])
    squares = ctx.op("ReduceSum", [ctx.op("Mul", [kept, kept]), reduce], keepdims=1)
    return mean, centered, ctx.op("Div", [squares, count])


def batch_norm_training(ctx, layer, x: LTensor) -> LTensor:
    """Keras's BatchNormalization(training=True) on x as stored: batch statistics, and the
    new moving statistics reported with ctx.update_buffer. A frozen layer
    (trainable=false) behaves as at inference, as in Keras."""
    return _batch_norm(ctx, layer, x, batch_statistics=bool(layer.trainable))


def batch_norm_inference(ctx, layer, x: LTensor) -> LTensor:
    """The inference formula with the moving statistics, in the same arithmetic (and the
    same weights) as batch_norm_training."""
    return _batch_norm(ctx, layer, x, batch_statistics=False)


def batch_norm_training_per_step(ctx, layer, x: LTensor) -> LTensor:
    """Keras's TimeDistributed(BatchNormalization()) in training: Keras calls the layer on
    each time slice in turn, so every step is normalised with its own batch statistics
    and the moving statistics are updated once per step, in time order:
    m_T = m_0 k^T + (1 - k) sum_t k^(T-1-t) s_t (k = momentum, s_t the step's statistic).
    `x` is the logical (batch, time, ...) input; `layer` the wrapped layer (ctx.layer)."""
    if not layer.trainable:
        raise AssertionError("a frozen BatchNormalization has no batch statistics")
    rank = x.rank
    steps = x.type.shape[1]
    if not isinstance(steps, int):
        raise NotImplementedError(
            "TimeDistributed(BatchNormalization()) in training needs a known number of "
            "timesteps: declare the time axis with a number"
        )
    axis = layer.axis % (rank - 1) + 1  # the wrapped layer's axis, on (batch, time, ...)
    n = x.type.shape[axis]
    reduce = ctx.ints([a for a in range(rank) if a not in (1, axis)], "axes")
    mean, centered, variance = _moments(ctx, x, reduce)  # (1, T, ..., n, ...)

    def param(name: str) -> str:
        return _on_axis(ctx, ctx.weight(name), rank, axis, n)

    gamma = param("gamma") if layer.scale else None
    beta = param("beta") if layer.center else None
    k = float(layer.momentum)
    decay = np.array([(1 - k) * k ** (steps - 1 - t) for t in range(steps)], np.float32)
    per_step = ctx.const(decay.reshape(steps, 1), name="step_weights")
    for name, statistic in (("moving_mean", mean), ("moving_variance", variance)):
        buffer = ctx.weight(name)
        by_step = ctx.op("Reshape", [statistic, ctx.ints([steps, n])])
        added = ctx.op("ReduceSum", [ctx.op("Mul", [by_step, per_step]), ctx.ints([0], "axes")])
        kept = ctx.op("Mul", [buffer, ctx.const(np.float32(k**steps))])
        ctx.update_buffer(buffer, ctx.op("Add", [kept, ctx.op("Reshape", [added, ctx.ints([n])])]))
    return _normalize(ctx, x, centered, variance, layer.epsilon, gamma, beta)


def layer_norm_training(ctx, layer, x: LTensor) -> LTensor:
    """Keras's LayerNormalization as differentiable arithmetic, on x as stored: each
    sample normalised over `axis` with its own (biased) mean and variance;
    rms_scaling=true (deprecated in Keras) scales x by rsqrt(variance + epsilon) without
    centering and has no beta. Same in training and inference.

    gamma and beta are the inference lowering's (transpiler/layers/normalization.py):
    Keras's weight reshaped to the input's rank and transposed to the stored layout,
    keyed `full<perm>`, or, where the inference uses ONNX's fused LayerNormalization
    (the normalized axes stored last, no rms_scaling), only those trailing dims, keyed
    `tail<perm>`; so training updates the very initializers inference reads."""
    rank = x.rank
    axes = sorted(layer.axis) if isinstance(layer.axis, (tuple, list)) else [layer.axis]
    logical = [a % rank for a in axes]
    full = [1] * rank
    for i in logical:
        full[i] = x.type.shape[i]
    perm = x.perm or tuple(range(rank))
    physical = sorted(x.physical_axis(i) for i in logical)
    k = len(physical)
    if not layer.rms_scaling and physical == list(range(rank - k, rank)):
        tail = tuple(x.physical_shape()[rank - k :])
        key = f"tail{perm}"

        def layout(v):
            return np.transpose(v.reshape(full), perm).reshape(tail)
    else:
        key = f"full{perm}"

        def layout(v):
            return np.transpose(v.reshape(full), perm)

    scale = layer.scale or layer.rms_scaling
    center = layer.center and not layer.rms_scaling
    gamma = ctx.weight("gamma", layout, key) if scale else None
    beta = ctx.weight("beta", layout, key) if center else None
    reduce = ctx.ints(physical, "axes")
    mean = ctx.op("ReduceMean", [x.name, reduce], keepdims=1)
    centered = ctx.op("Sub", [x.name, mean])
    variance = ctx.op("ReduceMean", [ctx.op("Mul", [centered, centered]), reduce], keepdims=1)
    if layer.rms_scaling:
        return _normalize(ctx, x, x.name, variance, layer.epsilon, gamma, None)
    return _normalize(ctx, x, centered, variance, layer.epsilon, gamma, beta)
