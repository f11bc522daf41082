"""Keras 3's losses in PyTorch, as Keras's torch backend computes them
(keras/src/losses/losses.py and keras/src/backend/torch/nn.py): per-sample values,
then the loss's reduction, masks and loss weights, then the regularizers' penalties.

A loss is written as data in the script: {"name": "categorical_crossentropy",
"weight": 1.0, "kwargs": {the arguments not at Keras's defaults}} ("kwargs" may be
absent; every function here defaults to Keras's values). `LOSSES` maps
each name to `fn(y_pred, y_true, kwargs) -> values` or `(values, mask)`, where a
boolean mask leaves entries out of the reduction as Keras's loss masks do
(`ignore_class`); the Keras mask of the output (Embedding(mask_zero=true) upstream) is
combined with it, as Keras's `Loss.__call__` does.

**Reduction across processes.** `TrainingLoss` returns each process's share of the
batch's loss: divided by the counts of the whole batch (`Counts`), so that the shares
of all processes add up to the loss of the batch, and a regularizer's penalty divided
by the number of processes. In one process the share is the loss, computed as Keras
computes it.

torch is imported when a loss is computed, not with this module.
"""

from __future__ import annotations

import math

EPSILON = 1e-7  # keras.config.epsilon()
SPARSE = ("sparse_categorical_crossentropy",)


def _torch():
    import torch

    return torch


def _mean(x, axis=-1):
    return x.mean(dim=axis)


def _clip(x, high=1.0 - EPSILON):
    return _torch().clip(x, EPSILON, high)


def _binary_smooth(t, kw):
    ls = kw.get("label_smoothing", 0.0)
    return t * (1.0 - ls) + 0.5 * ls if ls else t


def _categorical_smooth(t, kw):
    ls = kw.get("label_smoothing", 0.0)
    if not ls:
        return t
    classes = _torch().tensor(t.shape[-1], dtype=t.dtype, device=t.device)
    return t * (1.0 - ls) + ls / classes


def _bce(t, y, from_logits: bool):
    """keras.ops.binary_crossentropy, elementwise."""
    functional = _torch().nn.functional
    if from_logits:
        return functional.binary_cross_entropy_with_logits(y, t, reduction="none")
    return functional.binary_cross_entropy(_clip(y), t, reduction="none")


def _log_probs(y, from_logits: bool, axis: int):
    torch = _torch()
    if from_logits:
        return torch.nn.functional.log_softmax(y, dim=axis)
    y = y / torch.sum(y, dim=axis, keepdim=True)
    return torch.log(_clip(y))


def binary_crossentropy(y, t, kw):
    t = _binary_smooth(t, kw)
    return _mean(_bce(t, y, kw.get("from_logits", False)), kw.get("axis", -1))


def binary_focal_crossentropy(y, t, kw):
    torch = _torch()
    t = _binary_smooth(t, kw)
    if kw.get("from_logits"):
        y = torch.sigmoid(y)
    bce = _bce(t, y, False)
    p_t = t * y + (1 - t) * (1 - y)
    focal = torch.pow(1.0 - p_t, kw.get("gamma", 2.0)) * bce
    if kw.get("apply_class_balancing"):
        alpha = kw.get("alpha", 0.25)
        focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
    return _mean(focal, kw.get("axis", -1))


def categorical_crossentropy(y, t, kw):
    axis = kw.get("axis", -1)
    t = _categorical_smooth(t, kw)
    logp = _log_probs(y, kw.get("from_logits", False), axis)
    return -_torch().sum(t * logp, dim=axis)


def categorical_focal_crossentropy(y, t, kw):
    torch = _torch()
    axis = kw.get("axis", -1)
    t = _categorical_smooth(t, kw)
    if kw.get("from_logits"):
        y = torch.softmax(y, dim=axis)
    p = _clip(y / torch.sum(y, dim=axis, keepdim=True))
    cce = -t * torch.log(p)
    weighting = torch.pow(1.0 - p, kw.get("gamma", 2.0)) * kw.get("alpha", 0.25)
    return torch.sum(weighting * cce, dim=axis)


def sparse_categorical_crossentropy(y, t, kw):
    torch = _torch()
    functional = torch.nn.functional
    ignore = kw.get("ignore_class")
    t = t.reshape(y.shape[:-1])
    valid = None
    if ignore is not None:
        valid = t != ignore
        t = torch.where(valid, t, 0)
        y = torch.where(valid.unsqueeze(-1), y, 0.0)  # where: no NaN gradient there
    t = t.long()
    moved = y.movedim(-1, 1) if y.dim() > 2 else y
    if kw.get("from_logits", False):
        values = functional.cross_entropy(moved, t, reduction="none")
    else:
        moved = moved / torch.sum(moved, dim=1, keepdim=True)
        logp = torch.log(_clip(moved))
        values = functional.nll_loss(logp, t, reduction="none")
    if valid is None:
        return values
    return torch.where(valid, values, 0.0), valid


def mean_squared_error(y, t, kw):
    return _mean(_torch().square(t - y))


def mean_absolute_error(y, t, kw):
    return _mean(_torch().abs(t - y))


def mean_absolute_percentage_error(y, t, kw):
    torch = _torch()
    diff = torch.abs((t - y) / torch.clamp(torch.abs(t), min=EPSILON))
    return 100.0 * _mean(diff)


def mean_squared_logarithmic_error(y, t, kw):
    torch = _torch()
    first = torch.log(torch.clamp(y, min=EPSILON) + 1.0)
    second = torch.log(torch.clamp(t, min=EPSILON) + 1.0)
    return _mean(torch.square(first - second))


def huber(y, t, kw):
    torch = _torch()
    delta = torch.tensor(kw.get("delta", 1.0), dtype=y.dtype, device=y.device)
    error = y - t
    abs_error = torch.abs(error)
    half = 0.5
    quadratic = half * torch.square(error)
    linear = delta * abs_error - half * torch.square(delta)
    return _mean(torch.where(abs_error <= delta, quadratic, linear))


def log_cosh(y, t, kw):
    torch = _torch()
    x = y - t
    log2 = torch.tensor(math.log(2.0), dtype=y.dtype, device=y.device)
    return _mean(x + torch.nn.functional.softplus(x * -2.0) - log2)


def kl_divergence(y, t, kw):
    torch = _torch()
    t, y = _clip(t, 1.0), _clip(y, 1.0)
    return torch.sum(t * torch.log(t / y), dim=-1)


def poisson(y, t, kw):
    return _mean(y - t * _torch().log(y + EPSILON))


def _hinge_labels(t):
    """Keras's convert_binary_labels_to_hinge: 0/1 labels become -1/1 when every label
    of the batch is 0 or 1."""
    torch = _torch()
    binary = torch.all((t == 0) | (t == 1))
    return torch.where(binary, 2.0 * t - 1.0, t)


def hinge(y, t, kw):
    return _mean(_torch().clamp(1.0 - _hinge_labels(t) * y, min=0.0))


def squared_hinge(y, t, kw):
    torch = _torch()
    return _mean(torch.square(torch.clamp(1.0 - _hinge_labels(t) * y, min=0.0)))


def categorical_hinge(y, t, kw):
    torch = _torch()
    positive = torch.sum(t * y, dim=-1)
    negative = torch.amax((1.0 - t) * y, dim=-1)
    return torch.clamp(negative - positive + 1.0, min=0.0)


def _normalize(x, axis):
    """keras.ops.normalize(order=2): x * min(rsqrt(sum(x^2)), 1 / eps)."""
    torch = _torch()
    inverse = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
    return x * torch.clamp(inverse, max=1.0 / EPSILON)


def cosine_similarity(y, t, kw):
    axis = kw.get("axis", -1)
    return -_torch().sum(_normalize(t, axis) * _normalize(y, axis), dim=axis)


LOSSES = {
    fn.__name__: fn
    for fn in (
        binary_crossentropy,
        binary_focal_crossentropy,
        categorical_crossentropy,
        categorical_focal_crossentropy,
        sparse_categorical_crossentropy,
        mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        huber,
        log_cosh,
        kl_divergence,
        poisson,
        hinge,
        squared_hinge,
        categorical_hinge,
        cosine_similarity,
    )
}


# ---------------------------------------------------------------- reduction


class Counts:
    """The counts a reduction divides by, over the whole batch. In one process they are
    this batch's own; `DistributedCounts` (torch_dist.py) adds up every process's."""

    rows_factor = 1.0  # the whole batch's rows / this process's rows

    def total(self, values) -> float:
        """How many entries `values` has over the whole batch."""
        return float(values.numel())

    def valid(self, mask):
        """How many entries of `mask` are true over the whole batch (a tensor)."""
        return mask.sum(dtype=_torch().float32)

    def share(self, penalty):
        """This process's share of a penalty every process computes alike."""
        return penalty


def divide_no_nan(x, y):
    torch = _torch()
    return torch.where(y == 0, torch.zeros_like(x), x / torch.where(y == 0, 1.0, y))


def reduce(values, mask, reduction: str, counts: Counts):
    """Keras's reduce_weighted_values without sample weights, as this process's share:
    `sum_over_batch_size`/`mean` divide by the entries (a mask weighs valid ones by
    total / valid), `sum` adds up, `mean_with_sample_weight` divides by the valid
    entries."""
    torch = _torch()
    total = torch.tensor(counts.total(values), dtype=values.dtype, device=values.device)
    if mask is not None:
        flags = mask.to(values.dtype)
        if reduction in ("sum_over_batch_size", "mean"):
            weight = divide_no_nan(total, counts.valid(mask).to(values.dtype))
            values = values * torch.where(mask, weight, 0.0)
        else:
            values = values * flags
            if reduction == "mean_with_sample_weight":
                total = counts.valid(mask).to(values.dtype)
    loss = torch.sum(values)
    if reduction == "sum":
        return loss
    return divide_no_nan(loss, total)


def penalty(weight, l1: float, l2: float):
    """A Keras L1, L2 or L1L2 regularizer on a weight."""
    torch = _torch()
    if l1 and l2:
        return 0.0 + l1 * torch.sum(torch.abs(weight)) + l2 * torch.sum(torch.square(weight))
    if l1:
        return l1 * torch.sum(torch.abs(weight))
    return l2 * torch.sum(torch.square(weight))


class TrainingLoss:
    """The loss of a train block. `losses`: {output: {"name", "weight", "kwargs"}} for
    the outputs with a loss (kwargs: those not at Keras's defaults, which the loss
    functions default to), in the model's output order; `regularizers`:
    {"<layer>/<weight>": [l1, l2]} for the trainable weights that have one."""

    def __init__(self, losses: dict, regularizers: dict) -> None:
        unknown = [spec["name"] for spec in losses.values() if spec["name"] not in LOSSES]
        if unknown:
            raise ValueError(f"the loss {unknown[0]} is not supported")
        self.losses = losses
        self.regularizers = regularizers

    def __call__(
        self,
        predictions: dict,
        targets: dict,
        masks: dict,
        weights: dict,
        counts: Counts,
    ):
        """(this process's share of the total loss, {output: its share of that output's
        loss}); `weights`: {"<layer>/<weight>": tensor} for the regularizers."""
        torch = _torch()
        terms, per_output = [], {}
        for output, spec in self.losses.items():
            y = predictions[output].float()
            kwargs = spec.get("kwargs", {})  # those not at Keras's defaults
            result = LOSSES[spec["name"]](y, targets[output], kwargs)
            values, mask = result if isinstance(result, tuple) else (result, None)
            keras_mask = masks.get(output)
            if keras_mask is not None:
                keras_mask = keras_mask.reshape(values.shape)
                mask = keras_mask if mask is None else keras_mask & mask
            reduction = kwargs.get("reduction", "sum_over_batch_size")
            value = reduce(values, mask, reduction, counts)
            per_output[output] = value
            weight = spec.get("weight", 1.0)
            terms.append(value if weight == 1.0 else value * weight)
        for key, (l1, l2) in self.regularizers.items():
            terms.append(counts.share(penalty(weights[key], l1, l2)))
        total = terms[0] if len(terms) == 1 else torch.sum(torch.stack(terms))
        return total, per_output
