"""The per-batch statistic emitters of Keras metrics: each registered metric lowers one
batch's predictions and targets to ONNX values, a batch mean or confusion counts per
threshold, and says how batches combine and finish (`FINISH`). Which outputs the training
model declares and how the loop logs them is transpiler.emit.train.metrics's job."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPSILON = 1e-7
NEG_INF = -1e10  # keras metrics_utils.NEG_INF
FLOAT, INT64, BOOL = 1, 7, 9

METRICS: dict[str, Callable] = {}
FINISH: dict[str, Callable] = {}  # name -> fn(kwargs) -> (combine, finalize expression)
STATS: dict[str, tuple[str, ...]] = {}  # the statistics of metrics that output several


def metric(name: str, finish: Callable | None = None, stats: tuple[str, ...] = ()):
    """Registers `fn(b, y_pred, y_true, kwargs, shape) -> value name`, or `{stat: value
    name}` for the `stats` it declares; `finish(kwargs) -> (combine, finalize)` (default: a
    batch mean, logged as it is)."""

    def register(fn):
        METRICS[name] = fn
        FINISH[name] = finish or (lambda kw: ("mean", "float(value)"))
        if stats:
            STATS[name] = stats
        return fn

    return register


def _axes(b, *axes):
    return b.ints(list(axes), "axes")


def _float(b, x):
    return b.op("Cast", [x], to=FLOAT)


def _batch_mean(b, values, rank: int):
    """Keras's Mean metric on per-element values: a mean per sample, then over samples."""
    if rank > 1:
        values = b.op("ReduceMean", [values, _axes(b, *range(1, rank))], keepdims=0)
    return b.op("ReduceMean", [values], keepdims=0)


# ---------------------------------------------------------------- accuracies


@metric("binary_accuracy")
def _binary_accuracy(b, y, t, kw, shape):
    t = _float(b, t)
    pred = _float(b, b.op("Greater", [y, b.const(kw.get("threshold", 0.5))]))
    return _batch_mean(b, _float(b, b.op("Equal", [t, pred])), len(shape))


@metric("categorical_accuracy")
def _categorical_accuracy(b, y, t, kw, shape):
    same = b.op("Equal", [b.op("ArgMax", [y], axis=-1), b.op("ArgMax", [t], axis=-1)])
    return _batch_mean(b, _float(b, same), len(shape))


def _labels(b, y, t):
    """Sparse labels as int64, shaped like the predictions without their class axis."""
    label = b.op("Cast", [t], to=INT64)
    shape = b.op("Shape", [y], start=0, end=-1)
    return b.op("Reshape", [label, shape])


@metric("sparse_categorical_accuracy")
def _sparse_categorical_accuracy(b, y, t, kw, shape):
    pred = b.op("ArgMax", [y], axis=-1, keepdims=0)
    same = b.op("Equal", [pred, _labels(b, y, t)])
    return _batch_mean(b, _float(b, same), len(shape) - 1)


def _in_top_k(b, y, label, k: int):
    """torch's in_top_k: the label's score is at least the k-th largest score."""
    kth = b.op(
        "ReduceMin",
        [b.op("TopK", [y, b.ints([k], "k")], outputs=2, axis=-1)[0], _axes(b, -1)],
        keepdims=0,
    )
    index = b.op("Unsqueeze", [label, _axes(b, -1)])
    score = b.op("Squeeze", [b.op("GatherElements", [y, index], axis=-1), _axes(b, -1)])
    return b.op("GreaterOrEqual", [score, kth])


@metric("top_k_categorical_accuracy")
def _top_k_categorical_accuracy(b, y, t, kw, shape):
    label = b.op("ArgMax", [_float(b, t)], axis=-1, keepdims=0)
    hits = _in_top_k(b, y, label, kw.get("k", 5))
    return _batch_mean(b, _float(b, hits), len(shape) - 1)


@metric("sparse_top_k_categorical_accuracy")
def _sparse_top_k_categorical_accuracy(b, y, t, kw, shape):
    k = kw.get("k", 5)
    label = _labels(b, y, t)
    if kw.get("from_sorted_ids"):
        first = b.op("Slice", [y, b.ints([0], "starts"), b.ints([k], "ends"), _axes(b, -1)])
        same = b.op("Equal", [first, _float(b, b.op("Unsqueeze", [label, _axes(b, -1)]))])
        hits = b.op("ReduceMax", [_float(b, same), _axes(b, -1)], keepdims=0)
        return _batch_mean(b, hits, len(shape) - 1)
    return _batch_mean(b, _float(b, _in_top_k(b, y, label, k)), len(shape) - 1)


# ---------------------------------------------------------------- regression


def _error(b, y, t):
    return b.op("Sub", [_float(b, t), y])


@metric("mean_squared_error")
def _mse(b, y, t, kw, shape):
    d = _error(b, y, t)
    return _batch_mean(b, b.op("Mul", [d, d]), len(shape))


@metric("root_mean_squared_error", lambda kw: ("mean", "float(np.sqrt(value))"))
def _rmse(b, y, t, kw, shape):
    return _mse(b, y, t, kw, shape)


@metric("mean_absolute_error")
def _mae(b, y, t, kw, shape):
    return _batch_mean(b, b.op("Abs", [_error(b, y, t)]), len(shape))


@metric("mean_absolute_percentage_error")
def _mape(b, y, t, kw, shape):
    t = _float(b, t)
    denominator = b.op("Max", [b.op("Abs", [t]), b.const(EPSILON)])
    diff = b.op("Abs", [b.op("Div", [b.op("Sub", [t, y]), denominator])])
    per_sample = b.op("ReduceMean", [diff, _axes(b, -1)], keepdims=0)
    per_sample = b.op("Mul", [b.const(100.0), per_sample])
    return _batch_mean(b, per_sample, len(shape) - 1)


# ---------------------------------------------------------------- confusion matrices


def evenly_distributed(thresholds) -> bool:
    """Keras's is_evenly_distributed_thresholds."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(b, y, k: int):
    """Keras's _filter_top_k: scores outside the top k become NEG_INF."""
    classes = b.op("Shape", [y], start=-1)
    indices = b.op("TopK", [y, b.ints([k], "k")], outputs=2, axis=-1)[1]
    ids = b.op("Range", [b.const(0, np.int64), b.op("Squeeze", [classes]), b.const(1, np.int64)])
    hit = b.op("Equal", [b.op("Unsqueeze", [indices, _axes(b, -1)]), ids])
    mask = b.op("ReduceMax", [_float(b, hit), _axes(b, -2)], keepdims=0)
    inverse = b.op("Sub", [b.const(1.0), mask])
    return b.op("Add", [b.op("Mul", [y, mask]), b.op("Mul", [b.const(NEG_INF), inverse])])


def confusion_counts(
    b,
    y,
    t,
    thresholds: list[float],
    needed: tuple[str, ...],
    *,
    evenly: bool,
    with_epsilon: bool = False,
    multi_label: bool = False,
    label_weights: list[float] | None = None,
) -> dict[str, str]:
    """Keras's update_confusion_matrix_variables for one batch: {"tp"/"fp"/"tn"/"fn":
    counts per threshold}. `evenly` takes its optimized path (bucketing, clipped scores),
    else compares scores with each threshold."""
    count = len(thresholds)
    if multi_label:
        flat_y, flat_t = y, t  # [batch, labels]
        lead = [count, 1, 1]
    else:
        flat_y = b.op("Reshape", [y, b.ints([-1])])
        flat_t = b.op("Reshape", [t, b.ints([-1])])
        lead = [count, 1]
    positive = b.op("Cast", [flat_t], to=BOOL)
    weights = None
    if label_weights is not None and not multi_label:
        lw = b.const(np.asarray(label_weights, np.float32))
        weights = b.op("Reshape", [b.op("Expand", [lw, b.op("Shape", [y])]), b.ints([-1])])
    if evenly:
        clipped = b.op("Clip", [flat_y, b.const(0.0), b.const(1.0)])
        scaled = b.op("Mul", [clipped, b.const(float(count - 1))])
        bucket = b.op("Sub", [b.op("Ceil", [scaled]), b.const(1.0)])
        if with_epsilon:
            bucket = b.op("Relu", [bucket])
        index = b.const(np.arange(count, dtype=np.float32).reshape(lead))
        predicted = b.op("GreaterOrEqual", [b.op("Unsqueeze", [bucket, _axes(b, 0)]), index])
    else:
        levels = b.const(np.asarray(thresholds, np.float32).reshape(lead))
        predicted = b.op("Greater", [b.op("Unsqueeze", [flat_y, _axes(b, 0)]), levels])
    negative = b.op("Not", [positive])
    not_predicted = b.op("Not", [predicted])
    cells = {
        "tp": (positive, predicted),
        "fp": (negative, predicted),
        "tn": (negative, not_predicted),
        "fn": (positive, not_predicted),
    }
    out = {}
    for stat in needed:
        label, pred = cells[stat]
        both = b.op("And", [b.op("Unsqueeze", [label, _axes(b, 0)]), pred])
        values = _float(b, both)
        if weights is not None:
            values = b.op("Mul", [values, weights])
        out[stat] = b.op("ReduceSum", [values, _axes(b, 1)], keepdims=0)
    return out


def _precision_recall(needed: tuple[str, ...]):
    def emit(b, y, t, kw, shape):
        t = _float(b, t)
        top_k, class_id = kw.get("top_k"), kw.get("class_id")
        thresholds = kw.get("thresholds")
        default = 0.5 if top_k is None else NEG_INF
        thresholds = [default] if thresholds is None else thresholds
        thresholds = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
        if top_k is not None:
            y = _filter_top_k(b, y, top_k)
        if class_id is not None:
            starts, ends = b.ints([class_id], "starts"), b.ints([class_id + 1], "ends")
            y = b.op("Slice", [y, starts, ends, _axes(b, -1)])
            t = b.op("Slice", [t, starts, ends, _axes(b, -1)])
        evenly = evenly_distributed(thresholds)
        with_eps = evenly and (thresholds[0] < 0.0 or thresholds[-1] > 1.0)
        return confusion_counts(b, y, t, thresholds, needed, evenly=evenly, with_epsilon=with_eps)

    return emit


metric(
    "precision",
    lambda kw: ("sum", "first_or_list(divide_no_nan(tp, tp + fp))"),
    ("tp", "fp"),
)(_precision_recall(("tp", "fp")))
metric(
    "recall",
    lambda kw: ("sum", "first_or_list(divide_no_nan(tp, tp + fn))"),
    ("tp", "fn"),
)(_precision_recall(("tp", "fn")))


def auc_thresholds(kw: dict) -> tuple[list[float], bool]:
    """AUC's thresholds (with -eps and 1 + eps at the ends) and whether they are even."""
    given = kw.get("thresholds")
    if given is not None:
        inner = sorted(given)
        evenly = evenly_distributed(np.array([0.0, *inner, 1.0]))
    else:
        n = kw.get("num_thresholds", 200)
        inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]
        evenly = True
    return [0.0 - EPSILON, *inner, 1.0 + EPSILON], evenly


def _auc_finish(kw: dict) -> tuple[str, str]:
    args = (
        f"curve={kw.get('curve', 'ROC').upper()!r}, "
        f"summation_method={kw.get('summation_method', 'interpolation')!r}, "
        f"multi_label={bool(kw.get('multi_label'))!r}, "
        f"label_weights={kw.get('label_weights')!r}"
    )
    return "sum", f"auc_result(tp, fp, tn, fn, {args})"


@metric("auc", _auc_finish, ("tp", "fp", "tn", "fn"))
def _auc(b, y, t, kw, shape):
    t = _float(b, t)
    multi = bool(kw.get("multi_label"))
    if multi and len(shape) != 2:
        raise NotImplementedError("auc(multi_label=true) needs predictions of rank 2")
    if kw.get("from_logits"):
        y = b.op("Sigmoid", [y])
    thresholds, evenly = auc_thresholds(kw)
    return confusion_counts(
        b,
        y,
        t,
        thresholds,
        ("tp", "fp", "tn", "fn"),
        evenly=evenly,
        with_epsilon=True,
        multi_label=multi,
        label_weights=None if multi else kw.get("label_weights"),
    )
