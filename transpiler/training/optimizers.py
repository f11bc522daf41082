"""Optimizers (keras.optimizers) with Keras 3 defaults. Names are case-insensitive as in
Keras (`adam`, `"sgd"`, `RMSprop`); a bare name means every default. `learning_rate` is a
positive number or a schedule (see schedules.py)."""

from __future__ import annotations

from transpiler.layers.args import (
    ArgError,
    boolean,
    float_in,
    is_int,
    non_negative_float,
    optional,
    positive_float,
    positive_int,
)
from transpiler.layers.base import Arg
from transpiler.training.config import Catalogue, Entry, OptimizerSpec, TrainError
from transpiler.training.schedules import learning_rate

CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")


def _accumulation(value):
    if value is None:
        return None
    if not is_int(value) or value < 2:
        raise ArgError(f"expected an integer >= 2 or none, got {value}")
    return value


def _one_clip(kw: dict) -> None:
    given = [c for c in CLIPS if kw.get(c) is not None]
    if len(given) > 1:
        raise TrainError(
            f"only one of clipnorm, clipvalue and global_clipnorm can be set; "
            f"got {' and '.join(given)}",
            path=(given[1],),
            at_name=True,
        )


def _common(*, weight_decay: bool = True) -> tuple[Arg, ...]:
    """The arguments of keras.optimizers.Optimizer, in Keras's order."""
    wd = (Arg("weight_decay", optional(non_negative_float), None),) if weight_decay else ()
    return (
        *wd,
        Arg("clipnorm", optional(positive_float), None),
        Arg("clipvalue", optional(positive_float), None),
        Arg("global_clipnorm", optional(positive_float), None),
        Arg("use_ema", boolean, False),
        Arg("ema_momentum", float_in(0, 1), 0.99),
        Arg("ema_overwrite_frequency", optional(positive_int), None),
        Arg("loss_scale_factor", optional(positive_float), None),
        Arg("gradient_accumulation_steps", _accumulation, None),
    )


def _lr(default: float) -> Arg:
    return Arg("learning_rate", learning_rate, default)


BETA = float_in(0, 1, hi_open=True)
EPSILON = Arg("epsilon", non_negative_float, 1e-7)


def _optimizer(name: str, *args: Arg, weight_decay: bool = True) -> Entry:
    return Entry(name, name, (*args, *_common(weight_decay=weight_decay)), check=_one_clip)


OPTIMIZERS = Catalogue(
    "optimizer",
    [
        _optimizer(
            "SGD",
            _lr(0.01),
            Arg("momentum", float_in(0, 1), 0.0),
            Arg("nesterov", boolean, False),
        ),
        _optimizer(
            "RMSprop",
            _lr(0.001),
            Arg("rho", float_in(0, 1), 0.9),
            Arg("momentum", float_in(0, 1), 0.0),
            EPSILON,
            Arg("centered", boolean, False),
        ),
        _optimizer(
            "Adam",
            _lr(0.001),
            Arg("beta_1", BETA, 0.9),
            Arg("beta_2", BETA, 0.999),
            EPSILON,
            Arg("amsgrad", boolean, False),
        ),
        _optimizer(
            "AdamW",
            _lr(0.001),
            Arg("weight_decay", non_negative_float, 0.004),
            Arg("beta_1", BETA, 0.9),
            Arg("beta_2", BETA, 0.999),
            EPSILON,
            Arg("amsgrad", boolean, False),
            weight_decay=False,
        ),
        _optimizer(
            "Adagrad",
            _lr(0.001),
            Arg("initial_accumulator_value", non_negative_float, 0.1),
            EPSILON,
        ),
        _optimizer("Adadelta", _lr(0.001), Arg("rho", float_in(0, 1), 0.95), EPSILON),
        _optimizer(
            "Adamax", _lr(0.001), Arg("beta_1", BETA, 0.9), Arg("beta_2", BETA, 0.999), EPSILON
        ),
        _optimizer(
            "Nadam", _lr(0.001), Arg("beta_1", BETA, 0.9), Arg("beta_2", BETA, 0.999), EPSILON
        ),
        _optimizer(
            "Lion",
            _lr(0.001),
            Arg("beta_1", float_in(0, 1, lo_open=True), 0.9),
            Arg("beta_2", float_in(0, 1, lo_open=True), 0.99),
        ),
    ],
    ignore_case=True,
)

DEFAULT = "rmsprop"  # model.compile's default optimizer


def optimizer(value) -> OptimizerSpec:
    """`adam`, `"sgd"`, `Adam(learning_rate=1e-3, clipnorm=1.0)` -> OptimizerSpec."""
    r = OPTIMIZERS.resolve(value)
    return OptimizerSpec(r.entry.name, r.kwargs)
