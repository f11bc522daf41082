"""Keras metrics as per-batch statistics, plus the plan that turns them into what Keras logs.

A Keras metric is state accumulated over an epoch (or an evaluation) and read at the end
(`result()`); ONNX gives one batch at a time. So each metric outputs its batch statistics,
and `metric_plan` tells the training loop how to add batches up and finish.

**Training-model outputs** (all float32):

- mean metrics (accuracies, mse, mae, mape, rmse): one scalar `metric:<output>:<name>`, the
  batch mean of the per-sample values (for rmse, of the squared error);
- confusion metrics (precision, recall, auc): one output per statistic,
  `metric:<output>:<name>:tp` (and `:fp`, `:tn`, `:fn` as needed), counts per threshold,
  shaped `[thresholds]`, or `[thresholds, labels]` for `auc(multi_label=true)`.

`<name>` is the Keras log key without the output prefix: the metric's log name, with
`weighted_` for a `weighted_metrics` entry whose name is taken and `_1`, `_2` for repeats,
as Keras 3 names them. `batch_metrics` returns {output name: value name}; the model
declares each output with its shape from `metric_shapes(config, graph)` (`()`, `(T,)`,
`(T, L)`), not as a scalar.

**The plan**, `metric_plan(config)`: one dict per logged metric, in Keras's log order::

    {
        "output": "output",              # the model output it measures
        "key": "precision",              # Keras's log key ("val_" + key on validation);
                                         # "<output>_<name>" for models with several outputs
        "direction": "up",               # "up": higher is better, "down": lower
        "stats": {"tp": "metric:output:precision:tp",   # variable -> training-model output
                  "fp": "metric:output:precision:fp"},
        "combine": "sum",                # how batches add up, see below
        "finalize": "_first_or_list(_divide_no_nan(tp, tp + fp))",   # the logged value
    }

- `combine == "mean"`: each statistic is a batch mean; over batches
  `sum(value_b * batch_size_b) / sum(batch_size_b)` (Keras's Mean metrics count samples);
- `combine == "sum"`: statistics add up elementwise over batches (as float64 arrays).

Keras resets metrics at the start of every epoch and of every evaluation, and its
progress bar and `logs` show the running result: combine the batches seen so far and
finalize. `finalize` is a Python expression over the combined statistics (numpy float64
arrays, or floats for "mean") by their variable names, `np` (numpy) and the helpers in
`FINALIZE_HELPERS`, which the generated script includes verbatim once (it needs numpy
only); it evaluates to a float, or a list of floats where Keras logs a vector
(precision/recall with several thresholds). `evaluate_plan` is the reference of all this.

Metrics of an output without a loss are left out (plan and outputs): the training model
has no target for it, where Keras would log them when given its labels.
"""

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
    lambda kw: ("sum", "_first_or_list(_divide_no_nan(tp, tp + fp))"),
    ("tp", "fp"),
)(_precision_recall(("tp", "fp")))
metric(
    "recall",
    lambda kw: ("sum", "_first_or_list(_divide_no_nan(tp, tp + fn))"),
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
    return "sum", f"_auc(tp, fp, tn, fn, {args})"


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


# ---------------------------------------------------------------- finalizing (numpy only)

FINALIZE_HELPERS = '''
def _divide_no_nan(x, y):
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    out = np.zeros(x.shape)
    np.divide(x, y, out=out, where=y != 0)
    return out


def _first_or_list(values):
    values = np.asarray(values, np.float64).reshape(-1)
    return float(values[0]) if values.size == 1 else [float(v) for v in values]


def _auc(tp, fp, tn, fn, curve="ROC", summation_method="interpolation",
         multi_label=False, label_weights=None):
    """keras.metrics.AUC.result() on summed confusion counts."""
    tp, fp, tn, fn = (np.asarray(a, np.float64) for a in (tp, fp, tn, fn))

    def by_label(terms):
        if not multi_label:
            return float(np.sum(terms))
        per_label = np.sum(terms, axis=0)
        if label_weights is None:
            return float(np.mean(per_label))
        w = np.asarray(label_weights, np.float64)
        return float(_divide_no_nan(np.sum(per_label * w), np.sum(w)))

    if curve == "PR" and summation_method == "interpolation":
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(ratio)
        terms = _divide_no_nan(
            slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0)
        )
        return by_label(terms)
    recall = _divide_no_nan(tp, tp + fn)
    if curve == "ROC":
        x, y = _divide_no_nan(fp, fp + tn), recall
    elif curve == "PR":
        x, y = recall, _divide_no_nan(tp, tp + fp)
    else:  # PRGAIN
        scale = _divide_no_nan(tp + fn, tn + fp)
        recall_gain = 1.0 - scale * _divide_no_nan(fn, tp)
        precision_gain = 1.0 - scale * _divide_no_nan(fp, tp)
        recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
        precision_gain = np.where(tp == 0, 1.0, precision_gain)
        x, y = recall_gain, precision_gain
    if summation_method == "interpolation":
        heights = (y[:-1] + y[1:]) / 2.0
    elif summation_method == "minoring":
        heights = np.minimum(y[:-1], y[1:])
    else:
        heights = np.maximum(y[:-1], y[1:])
    return by_label((x[:-1] - x[1:]) * heights)
'''


# ---------------------------------------------------------------- the model's outputs


def log_names(config) -> list[tuple[str, object, str, str]]:
    """(output, MetricSpec, Keras log key, output-name suffix) for every metric, in Keras's
    order: `metrics` then `weighted_metrics`, output by output (callbacks.log_keys)."""
    many = len(config.outputs) > 1
    counters: dict[str, int] = {}
    out = []
    groups = ((config.metrics, False), (config.weighted_metrics, True))
    for group, weighted in groups:
        for o in config.outputs:
            for m in group.get(o, []):
                prefix = f"{o}_" if many else ""
                name = prefix + m.log_name
                if name in counters and weighted:
                    name = f"{prefix}weighted_{m.log_name}"
                if name not in counters:
                    counters[name] = 1
                else:
                    index = counters[name]
                    counters[name] += 1
                    name = f"{name}_{index}"
                out.append((o, m, name, name[len(prefix) :]))
    return out


def _stat_names(output: str, suffix: str, result) -> dict[str, str]:
    base = f"metric:{output}:{suffix}"
    if isinstance(result, dict):
        return {stat: f"{base}:{stat}" for stat in result}
    return {"value": base}


def batch_metrics(b, config, graph, predictions, targets) -> dict[str, str]:
    """{training-model output name: value name} for every metric statistic (see the
    module docstring for names and shapes)."""
    out = {}
    for output, spec, _, suffix in log_names(config):
        if output not in targets:
            continue
        fn = METRICS.get(spec.name)
        if fn is None:
            raise NotImplementedError(f"the metric {spec.name} is not emitted yet")
        shape = graph.outputs[output].type.shape
        result = fn(b, predictions[output], targets[output], spec.kwargs, shape)
        names = _stat_names(output, suffix, result)
        values = result if isinstance(result, dict) else {"value": result}
        for stat, name in names.items():
            out[name] = values[stat]
    return out


def _thresholds_of(spec) -> int:
    """How many thresholds a confusion metric counts at."""
    kw = spec.kwargs
    if spec.name == "auc":
        return len(auc_thresholds(kw)[0])
    given = kw.get("thresholds")
    return len(given) if isinstance(given, (list, tuple)) else 1


def metric_shapes(config, graph) -> dict[str, tuple]:
    """{training-model metric output: its static shape}: () for mean metrics, (T,) for
    confusion counts, (T, labels) for auc(multi_label=true). Declare outputs with these."""
    out = {}
    for output, spec, _, suffix in log_names(config):
        if output not in config.loss:
            continue
        stats = STATS.get(spec.name)
        if not stats:
            out[f"metric:{output}:{suffix}"] = ()
            continue
        shape: tuple = (_thresholds_of(spec),)
        if spec.name == "auc" and spec.kwargs.get("multi_label"):
            shape = (*shape, graph.outputs[output].type.shape[-1])
        for stat in stats:
            out[f"metric:{output}:{suffix}:{stat}"] = shape
    return out


def metric_plan(config) -> list[dict]:
    """How the training loop turns the metric outputs into Keras's logs (module docstring)."""
    plan = []
    for output, spec, key, suffix in log_names(config):
        if output not in config.loss:
            continue  # Keras computes no metrics for outputs it has no targets for
        if spec.name not in METRICS:
            raise NotImplementedError(f"the metric {spec.name} is not emitted yet")
        combine, finalize = FINISH[spec.name](spec.kwargs)
        stats = STATS.get(spec.name)
        plan.append(
            {
                "output": output,
                "key": key,
                "direction": spec.direction,
                "stats": _stat_names(output, suffix, dict.fromkeys(stats) if stats else None),
                "combine": combine,
                "finalize": finalize,
            }
        )
    return plan


def evaluate_plan(plan: list[dict], batches: list[dict], sizes: list[int]) -> dict[str, object]:
    """The reference loop: `batches` are the training (or evaluation) model's outputs per
    batch, `sizes` the batch sizes; returns {log key: value} as Keras logs it."""
    helpers: dict = {"np": np}
    exec(FINALIZE_HELPERS, helpers)
    logs = {}
    total = float(sum(sizes))
    for entry in plan:
        combined = {}
        for var, name in entry["stats"].items():
            if entry["combine"] == "mean":
                acc = sum(float(batch[name]) * n for batch, n in zip(batches, sizes))
                combined[var] = acc / total if total else 0.0
            else:
                combined[var] = sum(np.asarray(batch[name], np.float64) for batch in batches)
        logs[entry["key"]] = eval(entry["finalize"], dict(helpers), combined)
    return logs
