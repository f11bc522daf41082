"""Keras 3's metrics as per-batch statistics in PyTorch: the same statistics the
onnxruntime engine computes inside its graph (ktrans's metric_stats), so that the
runtime's metric plan (metrics.py: how batches add up, finalize.py: the logged value)
is shared by both engines.

A metric is an entry of the script's metric plan (metrics.py), which for this engine
also says what to compute: {"key": "precision", "stats": {"tp": "metric:y:precision:tp",
...}, "combine": ..., "finalize": ..., "metric": "precision", "output": "y", "kwargs":
{...}} (`stats`: variable -> the name the engine reports it under). `METRICS` maps each
metric's name to `fn(y_pred, y_true, kwargs)`, which returns

- for a mean metric (accuracies, mse, mae, mape, rmse): the per-sample values, one per
  row (Keras's Mean metric averages them; the engine reports their batch mean);
- for a confusion metric (precision, recall, auc): {"tp"/"fp"/"tn"/"fn": counts per
  threshold}, shaped [thresholds] or [thresholds, labels] (auc with multi_label).

Nothing here needs gradients: the engine calls `batch_statistics` under no_grad.
torch is imported when a metric is computed, not with this module.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7
NEG_INF = -1e10  # keras metrics_utils.NEG_INF


def _torch():
    import torch

    return torch


def _per_sample(values):
    """The mean over every axis but the batch axis (Keras's Mean of per-entry
    values)."""
    return values.reshape(values.shape[0], -1).mean(dim=1) if values.dim() > 1 else values


# ---------------------------------------------------------------- accuracies


def binary_accuracy(y, t, kw):
    predicted = (y > kw.get("threshold", 0.5)).to(y.dtype)
    return _per_sample((t.to(y.dtype) == predicted).to(y.dtype))


def categorical_accuracy(y, t, kw):
    same = _torch().argmax(y, dim=-1) == _torch().argmax(t, dim=-1)
    return _per_sample(same.to(y.dtype))


def _labels(y, t):
    """Sparse labels as int64, shaped like the predictions without their class axis."""
    return t.to(_torch().int64).reshape(y.shape[:-1])


def sparse_categorical_accuracy(y, t, kw):
    same = _torch().argmax(y, dim=-1) == _labels(y, t)
    return _per_sample(same.to(y.dtype))


def _in_top_k(y, label, k: int):
    """The label's score is at least the k-th largest score (torch's in_top_k)."""
    torch = _torch()
    kth = torch.topk(y, k, dim=-1).values.amin(dim=-1)
    score = torch.gather(y, -1, label.unsqueeze(-1)).squeeze(-1)
    return score >= kth


def top_k_categorical_accuracy(y, t, kw):
    label = _torch().argmax(t.to(y.dtype), dim=-1)
    return _per_sample(_in_top_k(y, label, kw.get("k", 5)).to(y.dtype))


def sparse_top_k_categorical_accuracy(y, t, kw):
    k = kw.get("k", 5)
    label = _labels(y, t)
    if kw.get("from_sorted_ids"):
        same = y[..., :k] == label.unsqueeze(-1).to(y.dtype)
        return _per_sample(same.to(y.dtype).amax(dim=-1))
    return _per_sample(_in_top_k(y, label, k).to(y.dtype))


# ---------------------------------------------------------------- regression


def mean_squared_error(y, t, kw):
    return _per_sample(_torch().square(t.to(y.dtype) - y))


def root_mean_squared_error(y, t, kw):
    return mean_squared_error(y, t, kw)  # finalized as the square root of the mean


def mean_absolute_error(y, t, kw):
    return _per_sample(_torch().abs(t.to(y.dtype) - y))


def mean_absolute_percentage_error(y, t, kw):
    torch = _torch()
    t = t.to(y.dtype)
    diff = torch.abs((t - y) / torch.clamp(torch.abs(t), min=EPSILON))
    return _per_sample(100.0 * diff.mean(dim=-1))


# ---------------------------------------------------------------- confusion matrices


def evenly_distributed(thresholds) -> bool:
    """Keras's is_evenly_distributed_thresholds."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def auc_thresholds(kw: dict) -> tuple[list[float], bool]:
    """AUC's thresholds (with -eps and 1 + eps at the ends), and whether they are
    evenly spaced."""
    given = kw.get("thresholds")
    if given is not None:
        inner = sorted(given)
        evenly = evenly_distributed(np.array([0.0, *inner, 1.0]))
    else:
        n = kw.get("num_thresholds", 200)
        inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]
        evenly = True
    return [0.0 - EPSILON, *inner, 1.0 + EPSILON], evenly


def confusion_counts(
    y,
    t,
    thresholds: list,
    needed: tuple,
    *,
    evenly: bool,
    with_epsilon: bool = False,
    multi_label: bool = False,
    label_weights=None,
) -> dict:
    """Keras's update_confusion_matrix_variables for one batch: {"tp"/"fp"/"tn"/"fn":
    counts per threshold}. `evenly` takes its optimized path (bucketing, clipped
    scores), else compares the scores with each threshold."""
    torch = _torch()
    count = len(thresholds)
    if multi_label:
        flat_y, flat_t, lead = y, t, (count, 1, 1)
    else:
        flat_y, flat_t, lead = y.reshape(-1), t.reshape(-1), (count, 1)
    positive = flat_t != 0
    weights = None
    if label_weights is not None and not multi_label:
        lw = torch.tensor(label_weights, dtype=y.dtype, device=y.device)
        weights = lw.expand(y.shape).reshape(-1)
    if evenly:
        bucket = torch.ceil(torch.clip(flat_y, 0.0, 1.0) * float(count - 1)) - 1.0
        if with_epsilon:
            bucket = torch.relu(bucket)
        index = torch.arange(count, dtype=y.dtype, device=y.device).reshape(lead)
        predicted = bucket.unsqueeze(0) >= index
    else:
        levels = torch.tensor(thresholds, dtype=y.dtype, device=y.device).reshape(lead)
        predicted = flat_y.unsqueeze(0) > levels
    cells = {
        "tp": (positive, predicted),
        "fp": (~positive, predicted),
        "tn": (~positive, ~predicted),
        "fn": (positive, ~predicted),
    }
    out = {}
    for stat in needed:
        label, pred = cells[stat]
        values = (label.unsqueeze(0) & pred).to(y.dtype)
        if weights is not None:
            values = values * weights
        out[stat] = values.sum(dim=1)
    return out


def _filter_top_k(y, k: int):
    """Keras's _filter_top_k: scores outside the top k become NEG_INF."""
    torch = _torch()
    indices = torch.topk(y, k, dim=-1).indices
    mask = torch.zeros_like(y).scatter_(-1, indices, 1.0)
    return y * mask + NEG_INF * (1.0 - mask)


def _precision_recall(needed: tuple):
    def statistics(y, t, kw):
        t = t.to(y.dtype)
        top_k, class_id = kw.get("top_k"), kw.get("class_id")
        thresholds = kw.get("thresholds")
        default = 0.5 if top_k is None else NEG_INF
        thresholds = [default] if thresholds is None else thresholds
        if not isinstance(thresholds, (list, tuple)):
            thresholds = [thresholds]
        if top_k is not None:
            y = _filter_top_k(y, top_k)
        if class_id is not None:
            y, t = y[..., class_id : class_id + 1], t[..., class_id : class_id + 1]
        evenly = evenly_distributed(thresholds)
        with_epsilon = evenly and (thresholds[0] < 0.0 or thresholds[-1] > 1.0)
        return confusion_counts(
            y, t, list(thresholds), needed, evenly=evenly, with_epsilon=with_epsilon
        )

    return statistics


def auc(y, t, kw):
    t = t.to(y.dtype)
    multi = bool(kw.get("multi_label"))
    if kw.get("from_logits"):
        y = _torch().sigmoid(y)
    thresholds, evenly = auc_thresholds(kw)
    return confusion_counts(
        y,
        t,
        thresholds,
        ("tp", "fp", "tn", "fn"),
        evenly=evenly,
        with_epsilon=True,
        multi_label=multi,
        label_weights=None if multi else kw.get("label_weights"),
    )


METRICS = {
    fn.__name__: fn
    for fn in (
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
        mean_squared_error,
        root_mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        auc,
    )
}
METRICS["precision"] = _precision_recall(("tp", "fp"))
METRICS["recall"] = _precision_recall(("tp", "fn"))

#: metrics whose Keras update ignores a mask on the predictions; the others weigh the
#: timesteps of a masked output, which neither engine reproduces yet
MASK_IGNORED = frozenset({"root_mean_squared_error", "precision", "recall", "auc"})


def batch_statistics(plan: list, predictions: dict, targets: dict, masks: dict):
    """({engine name: per-sample values} for mean statistics, {engine name: counts}
    for confusion statistics) of one batch, for the script's metric plan."""
    means, counts = {}, {}
    for spec in plan:
        output, name = spec["output"], spec["metric"]
        if masks.get(output) is not None and name not in MASK_IGNORED:
            raise ValueError(
                f"the metric {name} of output '{output}': that output carries "
                "a Keras mask, by which Keras weighs the metric's timesteps, which is "
                "not reproduced yet; remove the metric (the loss is masked as in Keras)"
            )
        y = predictions[output].float()
        result = METRICS[name](y, targets[output], spec.get("kwargs", {}))
        if isinstance(result, dict):
            for stat, name in spec["stats"].items():
                counts[name] = result[stat]
        else:
            means[spec["stats"]["value"]] = result
    return means, counts
