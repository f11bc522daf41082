"""Losses (keras.losses): each answers to its Keras function name, its class name and
Keras's aliases (`mse`, `bce`...), with the class's Keras 3 defaults. A `LossSpec` names
the class; an emitter writes `keras.losses.<keras_class>(**kwargs)`.

`resolve_losses` reads a train block's `loss` (one loss for every output, a list in output
order, or a dict by output name, as `model.compile` takes it) and `resolve_loss_weights`
its `loss_weights`."""

from __future__ import annotations

from transpiler.errors import suggest
from transpiler.graph.types import TensorType
from transpiler.layers.args import (
    ArgError,
    boolean,
    describe,
    float_in,
    integer,
    name_of,
    non_negative_float,
    optional,
    positive_float,
)
from transpiler.layers.base import Arg
from transpiler.training.config import Catalogue, Entry, LossSpec, Resolved, TrainError

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight")
# Keras 2 names that Keras 3 dropped
RENAMED = {
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
    "huber_loss": "huber",
}
AUTO = ("crossentropy", "ce")


def units(t: TensorType) -> int | None:
    """An output's last dimension when it is known (the batch axis does not count)."""
    d = t.shape[-1] if t.rank >= 2 else None
    return d if isinstance(d, int) else None


def _reduction(value) -> str:
    n = name_of(value)
    if n not in REDUCTIONS:
        hint = "a training loss must reduce to one number" if value is None or n == "none" else None
        raise ArgError(
            f"expected one of {', '.join(REDUCTIONS)}; got {describe(value)}",
            hint or (suggest(n, REDUCTIONS) if n else None),
        )
    return n


def _axis_fits(kw: dict, t: TensorType) -> None:
    if "axis" in kw and not -t.rank <= kw["axis"] < t.rank:
        raise TrainError(f"has axis={kw['axis']}, out of range for an output of rank {t.rank}")


def _classes_fit(hint: str):
    def fits(kw: dict, t: TensorType) -> None:
        _axis_fits(kw, t)
        if units(t) == 1:
            raise TrainError("needs one output unit per class; this output has 1", hint)

    return fits


FROM_LOGITS = Arg("from_logits", boolean, False)
SMOOTHING = Arg("label_smoothing", float_in(0, 1), 0.0)
AXIS = Arg("axis", integer, -1)
REDUCTION = Arg("reduction", _reduction, "sum_over_batch_size")
ALPHA = Arg("alpha", float_in(0, 1), 0.25)
GAMMA = Arg("gamma", non_negative_float, 2.0)
CATEGORICAL = _classes_fit("use binary_crossentropy for one output unit")


def _plain(name: str, cls: str, *aliases: str) -> Entry:
    return Entry(name, cls, (REDUCTION,), aliases)


LOSSES = Catalogue(
    "loss",
    [
        Entry(
            "binary_crossentropy",
            "BinaryCrossentropy",
            (FROM_LOGITS, SMOOTHING, AXIS, REDUCTION),
            ("bce", "BCE"),
            fits=_axis_fits,
        ),
        Entry(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            (FROM_LOGITS, SMOOTHING, AXIS, REDUCTION),
            fits=CATEGORICAL,
        ),
        Entry(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            (FROM_LOGITS, Arg("ignore_class", optional(integer), None), REDUCTION, AXIS),
            positional=2,  # the class takes reduction third, the function axis
            fits=_classes_fit(
                "sparse labels are class ids, so the output needs a unit per class; "
                "use binary_crossentropy for one output unit"
            ),
        ),
        Entry(
            "binary_focal_crossentropy",
            "BinaryFocalCrossentropy",
            (
                Arg("apply_class_balancing", boolean, False),
                ALPHA,
                GAMMA,
                FROM_LOGITS,
                SMOOTHING,
                AXIS,
                REDUCTION,
            ),
            fits=_axis_fits,
        ),
        Entry(
            "categorical_focal_crossentropy",
            "CategoricalFocalCrossentropy",
            (ALPHA, GAMMA, FROM_LOGITS, SMOOTHING, AXIS, REDUCTION),
            fits=CATEGORICAL,
        ),
        _plain("mean_squared_error", "MeanSquaredError", "mse", "MSE"),
        _plain("mean_absolute_error", "MeanAbsoluteError", "mae", "MAE"),
        _plain("mean_absolute_percentage_error", "MeanAbsolutePercentageError", "mape", "MAPE"),
        _plain("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", "msle", "MSLE"),
        Entry("huber", "Huber", (Arg("delta", positive_float, 1.0), REDUCTION)),
        _plain("log_cosh", "LogCosh"),
        _plain("kl_divergence", "KLDivergence", "kld", "KLD"),
        _plain("poisson", "Poisson"),
        _plain("hinge", "Hinge"),
        _plain("squared_hinge", "SquaredHinge"),
        _plain("categorical_hinge", "CategoricalHinge"),
        Entry("cosine_similarity", "CosineSimilarity", (AXIS, REDUCTION), fits=_axis_fits),
    ],
)


def resolve(value) -> Resolved:
    if value is None:
        raise TrainError("expected a loss, got none", "for example loss = mean_squared_error")
    n = None if isinstance(value, (list, dict)) else name_of(getattr(value, "name", value))
    if n in RENAMED:
        raise LOSSES.unknown(n, f"Keras 3 calls it '{RENAMED[n]}'")
    if n is not None and n.lower() in AUTO:
        raise LOSSES.unknown(
            n,
            "Keras picks binary, categorical or sparse crossentropy from the labels' shape, "
            "which ktrans cannot see: name one of them",
        )
    return LOSSES.resolve(value)


def fit(r: Resolved, output: str, t: TensorType, many: bool) -> LossSpec:
    """The loss for one output, checked against the output's shape."""
    if r.entry.fits is not None:
        try:
            r.entry.fits(r.kwargs, t)
        except TrainError as e:
            where = f" on output '{output}'" if many else ""
            raise TrainError(f"{r.written}{where} {e.message}", e.hint) from None
    return LossSpec(r.entry.name, r.entry.keras_class, dict(r.kwargs))


def check_keys(value: dict, outputs: dict, what: str, problems: list[TrainError]) -> None:
    for key in value:
        if key not in outputs:
            hint = suggest(key, outputs) or f"the model's outputs: {', '.join(outputs)}"
            problems.append(
                TrainError(f"{what}: the model has no output '{key}'", hint, (key,), True)
            )


def resolve_losses(value, outputs: dict[str, TensorType], problems: list[TrainError]) -> dict:
    """output name -> LossSpec, for the outputs that have a loss."""
    names = list(outputs)
    many = len(names) > 1
    if isinstance(value, dict):
        check_keys(value, outputs, "loss", problems)
        missing = [o for o in names if o not in value]
        if missing:
            problems.append(
                TrainError(
                    f"loss: the dict has no entry for output '{missing[0]}'",
                    f"Keras needs every output in a loss dict; write {missing[0]}: none "
                    "to leave it untrained",
                )
            )
        pairs = [(o, value[o], (o,)) for o in names if o in value]
    elif isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise TrainError(
                f"loss: expected one loss per output ({len(names)}: {', '.join(names)}); "
                f"got {len(value)}",
                "or give one loss for every output, or a dict by output name",
            )
        pairs = [(o, v, (i,)) for i, (o, v) in enumerate(zip(names, value))]
    else:
        r = resolve(value)
        out = {}
        for o in names:
            try:
                out[o] = fit(r, o, outputs[o], many)
            except TrainError as e:
                problems.append(e)
        return out
    out = {}
    for o, v, at in pairs:
        if v is None:
            continue
        try:
            out[o] = fit(resolve(v), o, outputs[o], many)
        except TrainError as e:
            problems.append(e.within(*at))
    if not out and not problems:
        raise TrainError("loss: no output has a loss", "give at least one output a loss")
    return out


def _weight(v, at: tuple) -> float:
    try:
        return non_negative_float(v)
    except ArgError as e:
        raise TrainError(f"loss_weights {e.message}", e.hint, at) from None


def resolve_loss_weights(
    value, outputs: dict[str, TensorType], losses: dict, problems: list[TrainError]
) -> dict[str, float]:
    """output name -> weight, for each output with a loss (1.0 unless given)."""
    names = list(outputs)
    weights = {o: 1.0 for o in names if o in losses}
    if isinstance(value, dict):
        check_keys(value, outputs, "loss_weights", problems)
        pairs = [(o, value[o], (o,)) for o in names if o in value]
    elif isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise TrainError(
                f"loss_weights: expected one weight per output ({len(names)}: "
                f"{', '.join(names)}); got {len(value)}"
            )
        pairs = [(o, v, (i,)) for i, (o, v) in enumerate(zip(names, value))]
    elif len(names) == 1:
        pairs = [(names[0], value, ())]
    else:
        raise TrainError(
            f"loss_weights: a model with {len(names)} outputs takes a list or a dict by "
            f"output name; got {describe(value)}",
            f"for example loss_weights = {{{names[0]}: 1.0, {names[1]}: 0.5}}",
        )
    for o, v, at in pairs:
        try:
            w = _weight(v, at)
        except TrainError as e:
            problems.append(e)
            continue
        if o not in losses:
            if isinstance(value, dict):
                problems.append(
                    TrainError(f"loss_weights: output '{o}' has no loss to weigh", None, at, True)
                )
            continue
        weights[o] = w
    return weights
