"""Metrics (keras.metrics) with Keras 3 defaults, by class name, Keras function name or
alias (`mse`, `mae`...). `accuracy`/`acc` is resolved as ktrans fixes it for the output:
binary_accuracy for one unit or a binary crossentropy loss, sparse_categorical_accuracy for
a sparse loss, else categorical_accuracy; the metric keeps the written name as its log name.

`resolve_metrics` reads `metrics` (and `weighted_metrics`) as Keras 3's compile does: for
one output any list; for several outputs a dict by output name or a list with one entry
(a metric, a list of metrics or none) per output."""

from __future__ import annotations

import re

from transpiler.graph.types import TensorType
from transpiler.layers.args import (
    ArgError,
    Spec,
    boolean,
    choice,
    describe,
    float_in,
    is_int,
    name_of,
    non_negative_float,
    non_negative_int,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg
from transpiler.training.config import Catalogue, Entry, MetricSpec, TrainError, defaults
from transpiler.training.losses import check_keys, units

ACCURACY = ("accuracy", "acc")
SPARSE_LOSSES = ("sparse_categorical_crossentropy",)

#: metrics whose Keras update ignores a mask on the predictions (RootMeanSquaredError
#: reads the mask of the squared error, which has none; the confusion metrics read none)
MASK_IGNORED = frozenset({"root_mean_squared_error", "precision", "recall", "auc"})


def masked_metric_error(metric: str, output: str) -> TrainError | None:
    """Keras's MeanMetricWrapper metrics weight each timestep by the Keras mask of the
    output (Embedding(mask_zero=true) upstream, transpiler.layers.masking): a count the
    per-batch means of ktrans's metrics cannot carry, so such a pairing is an error, not
    a silent difference. None for a metric that ignores the mask."""
    if metric in MASK_IGNORED:
        return None
    return TrainError(
        f"the metric {metric} of output '{output}': that output carries a Keras mask "
        "(from Embedding(mask_zero=true)), by which Keras weights the metric's timesteps, "
        "and ktrans does not reproduce that yet",
        "remove the metric (the loss is masked as in Keras), or use one that ignores "
        f"masks ({', '.join(sorted(MASK_IGNORED))})",
    )


def _log_name(value):
    n = name_of(value)
    if n is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", n):
        raise ArgError(
            f"expected a name of letters, digits, '_', '-' or '.'; got {describe(value)}"
        )
    return n


def _thresholds(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [float_in(0, 1)(v) for v in value]
    return float_in(0, 1)(value)


def _threshold_list(value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ArgError(f"expected a list of numbers in [0, 1], got {describe(value)}")
    return [float_in(0, 1)(v) for v in value]


def _weights(value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ArgError(f"expected a list of non-negative numbers, got {describe(value)}")
    return [non_negative_float(v) for v in value]


def _num_thresholds(value):
    if not is_int(value) or value <= 1:
        raise ArgError(f"expected an integer > 1, got {describe(value)}")
    return value


def _upper(convert):
    return lambda v: convert(v).upper()


def _auc(kw: dict) -> None:
    if kw["num_labels"] is not None and not kw["multi_label"]:
        raise TrainError("num_labels needs multi_label=true", path=("num_labels",), at_name=True)


def _classes(hint: str, *, k: bool = False, class_arg: bool = False):
    def fits(kw: dict, t: TensorType) -> None:
        n = units(t)
        if n is None:
            return
        if n == 1 and not class_arg:
            raise TrainError("needs one output unit per class; this output has 1", hint)
        if k and kw["k"] > n:
            raise TrainError(
                f"has k={kw['k']}, more than the {n} classes of this output",
                f"Keras fails at run time when k exceeds the classes; use k <= {n}",
            )
        if class_arg and kw["top_k"] is not None and kw["top_k"] > n:
            raise TrainError(f"has top_k={kw['top_k']}, more than the {n} units of this output")
        if class_arg and kw["class_id"] is not None and kw["class_id"] >= n:
            raise TrainError(
                f"has class_id={kw['class_id']}, but this output has {n} unit{'s' * (n != 1)}",
                f"class ids count from 0 to {n - 1}",
            )

    return fits


NAME = Arg("name", optional(_log_name), None)
ONE_UNIT = "use binary_accuracy for one output unit"
CONFUSION = (
    Arg("thresholds", _thresholds, None),
    Arg("top_k", optional(positive_int), None),
    Arg("class_id", optional(non_negative_int), None),
    NAME,
)


def _m(name, cls, args=(NAME,), aliases=(), up=False, positional=0, **kw) -> Entry:
    return Entry(name, cls, args, aliases, positional, direction="up" if up else "down", **kw)


METRICS = Catalogue(
    "metric",
    [
        _m(
            "binary_accuracy",
            "BinaryAccuracy",
            (Arg("threshold", float_in(0, 1), 0.5), NAME),
            up=True,
        ),
        _m("categorical_accuracy", "CategoricalAccuracy", up=True, fits=_classes(ONE_UNIT)),
        _m(
            "sparse_categorical_accuracy",
            "SparseCategoricalAccuracy",
            up=True,
            fits=_classes(ONE_UNIT),
        ),
        _m(
            "top_k_categorical_accuracy",
            "TopKCategoricalAccuracy",
            (Arg("k", positive_int, 5), NAME),
            up=True,
            positional=1,
            fits=_classes(ONE_UNIT, k=True),
        ),
        _m(
            "sparse_top_k_categorical_accuracy",
            "SparseTopKCategoricalAccuracy",
            (Arg("k", positive_int, 5), NAME, Arg("from_sorted_ids", boolean, False)),
            up=True,
            positional=1,
            fits=_classes(ONE_UNIT, k=True),
        ),
        _m("mean_squared_error", "MeanSquaredError", aliases=("mse", "MSE")),
        _m("mean_absolute_error", "MeanAbsoluteError", aliases=("mae", "MAE")),
        _m("root_mean_squared_error", "RootMeanSquaredError"),
        _m(
            "mean_absolute_percentage_error",
            "MeanAbsolutePercentageError",
            aliases=("mape", "MAPE"),
        ),
        _m(
            "precision",
            "Precision",
            CONFUSION,
            up=True,
            positional=3,
            fits=_classes("", class_arg=True),
        ),
        _m("recall", "Recall", CONFUSION, up=True, positional=3, fits=_classes("", class_arg=True)),
        _m(
            "auc",
            "AUC",
            (
                Arg("num_thresholds", _num_thresholds, 200),
                Arg("curve", _upper(choice("roc", "pr", "prgain")), "ROC"),
                Arg(
                    "summation_method",
                    choice("interpolation", "majoring", "minoring"),
                    "interpolation",
                ),
                NAME,
                Arg("thresholds", _threshold_list, None),
                Arg("multi_label", boolean, False),
                Arg("num_labels", optional(positive_int), None),
                Arg("label_weights", _weights, None),
                Arg("from_logits", boolean, False),
            ),
            up=True,
            positional=3,
            check=_auc,
        ),
    ],
    also=ACCURACY,
)


def pick_accuracy(t: TensorType, loss: str | None) -> Entry:
    """The class `accuracy` stands for on an output with this type and loss, as Keras 3's
    compile picks it: by shape (one unit: binary), sparse labels: sparse; else categorical,
    even for a multi-unit output trained with binary crossentropy (Keras's choice)."""
    if units(t) == 1:
        return METRICS.find("binary_accuracy")
    if loss in SPARSE_LOSSES:
        return METRICS.find("sparse_categorical_accuracy")
    return METRICS.find("categorical_accuracy")


def metric(value, t: TensorType, loss: str | None, output: str | None) -> MetricSpec:
    """One metric for one output (`output` is None for a single-output model)."""
    where = f" on output '{output}'" if output else ""
    if isinstance(value, Spec) and value.name.lower() in ACCURACY:
        raise TrainError(
            f"{value.name}() takes no arguments: it stands for binary, categorical or sparse "
            "categorical accuracy",
            "name the one you mean to pass arguments, e.g. binary_accuracy(threshold=0.7)",
        )
    n = None if isinstance(value, Spec) else name_of(value)
    if n is not None and n.lower() in ACCURACY:
        entry = pick_accuracy(t, loss)
        kwargs = defaults(entry)
        kwargs.pop("name")
        return MetricSpec(entry.name, entry.keras_class, kwargs, n, n, entry.direction)
    r = METRICS.resolve(value)
    if r.entry.fits is not None:
        try:
            r.entry.fits(r.kwargs, t)
        except TrainError as e:
            raise TrainError(f"{r.written}{where} {e.message}", e.hint or None) from None
    kwargs = dict(r.kwargs)
    given = kwargs.pop("name")
    log_name = given or (r.entry.name if isinstance(value, Spec) else r.written)
    return MetricSpec(r.entry.name, r.entry.keras_class, kwargs, log_name, None, r.entry.direction)


def _flat(value, at: tuple) -> list[tuple[object, tuple]]:
    if isinstance(value, (list, tuple)):
        return [pair for i, v in enumerate(value) for pair in _flat(v, (*at, i))]
    return [(value, at)]


def resolve_metrics(
    value,
    outputs: dict[str, TensorType],
    losses: dict,
    what: str,
    problems: list[TrainError],
    masked: frozenset[str] | set[str] = frozenset(),
) -> dict[str, list[MetricSpec]]:
    """output name -> its metrics, for the outputs that have any. `masked`: the outputs
    that carry a Keras mask (a metric there must ignore it: masked_metric_error)."""
    names = list(outputs)
    many = len(names) > 1
    if value is None:
        return {}
    if isinstance(value, dict):
        check_keys(value, outputs, what, problems)
        groups = [(o, value[o], (o,)) for o in names if o in value]
    elif isinstance(value, (list, tuple)) and not many:
        groups = [(names[0], value, ())]
    elif isinstance(value, (list, tuple)) and len(value) == len(names):
        groups = [(o, v, (i,)) for i, (o, v) in enumerate(zip(names, value))]
    elif isinstance(value, (list, tuple)):
        raise TrainError(
            f"{what}: a model with {len(names)} outputs takes a dict by output name, or a list "
            f"with one entry per output ({', '.join(names)}); got a list of {len(value)}",
            f"for example {what} = {{{names[-1]}: [accuracy]}}",
        )
    else:
        raise TrainError(
            f"{what}: expected a list of metrics or a dict by output name, got {describe(value)}",
            f"write {what} = [{describe(value)}]",
        )
    out: dict[str, list[MetricSpec]] = {}
    for o, group, at in groups:
        specs = []
        for v, path in _flat(group, at):
            if v is None:
                continue
            loss = losses[o].name if o in losses else None
            try:
                spec = metric(v, outputs[o], loss, o if many else None)
            except TrainError as e:
                problems.append(e.within(*path))
                continue
            specs.append(spec)
            unmasked = masked_metric_error(spec.name, o) if o in masked else None
            if unmasked is not None:
                problems.append(unmasked.within(*path))
        if specs:
            out[o] = specs
    return out
