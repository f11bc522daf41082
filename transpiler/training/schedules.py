"""Learning-rate schedules (keras.optimizers.schedules), usable as an optimizer's
`learning_rate` (stepped every batch) or in `LearningRateScheduler(schedule=...)` (stepped
every epoch). Names are Keras's class names, case-sensitive as in Keras."""

from __future__ import annotations

from itertools import pairwise

from transpiler.layers.args import (
    ArgError,
    Spec,
    boolean,
    describe,
    float_in,
    is_int,
    name_of,
    non_negative_float,
    non_negative_int,
    optional,
    positive_float,
    positive_int,
)
from transpiler.layers.base import Arg
from transpiler.training.config import Catalogue, Entry, ScheduleSpec, TrainError


def _boundaries(value) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(map(is_int, value)) or not value:
        raise ArgError(f"expected a list of step numbers, got {describe(value)}")
    if any(b <= a for a, b in pairwise(value)) or value[0] < 0:
        raise ArgError(f"expected increasing non-negative step numbers, got {describe(value)}")
    return list(value)


def _values(value) -> list[float]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ArgError(f"expected a list of learning rates, got {describe(value)}")
    return [non_negative_float(v) for v in value]


def _piecewise(kw: dict) -> None:
    if len(kw["values"]) != len(kw["boundaries"]) + 1:
        raise TrainError(
            f"values needs one more entry than boundaries ({len(kw['boundaries'])} "
            f"boundaries, so {len(kw['boundaries']) + 1} values); got {len(kw['values'])}",
            "values[i] applies before boundaries[i]; the last value after the last boundary",
            path=("values",),
        )


def _initial() -> Arg:
    return Arg("initial_learning_rate", positive_float)


SCHEDULES = Catalogue(
    "schedule",
    [
        Entry(
            "ExponentialDecay",
            "ExponentialDecay",
            (
                _initial(),
                Arg("decay_steps", positive_int),
                Arg("decay_rate", positive_float),
                Arg("staircase", boolean, False),
            ),
        ),
        Entry(
            "InverseTimeDecay",
            "InverseTimeDecay",
            (
                _initial(),
                Arg("decay_steps", positive_int),
                Arg("decay_rate", non_negative_float),
                Arg("staircase", boolean, False),
            ),
        ),
        Entry(
            "CosineDecay",
            "CosineDecay",
            (
                _initial(),
                Arg("decay_steps", positive_int),
                Arg("alpha", float_in(0, 1), 0.0),
                Arg("warmup_target", optional(positive_float), None),
                Arg("warmup_steps", non_negative_int, 0),
            ),
            positional=3,  # Keras's 4th positional is `name`
        ),
        Entry(
            "CosineDecayRestarts",
            "CosineDecayRestarts",
            (
                _initial(),
                Arg("first_decay_steps", positive_int),
                Arg("t_mul", positive_float, 2.0),
                Arg("m_mul", positive_float, 1.0),
                Arg("alpha", float_in(0, 1), 0.0),
            ),
        ),
        Entry(
            "PolynomialDecay",
            "PolynomialDecay",
            (
                _initial(),
                Arg("decay_steps", positive_int),
                Arg("end_learning_rate", non_negative_float, 0.0001),
                Arg("power", positive_float, 1.0),
                Arg("cycle", boolean, False),
            ),
        ),
        Entry(
            "PiecewiseConstantDecay",
            "PiecewiseConstantDecay",
            (Arg("boundaries", _boundaries), Arg("values", _values)),
            check=_piecewise,
        ),
    ],
)


def schedule(value) -> ScheduleSpec:
    """A schedule call (`ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)`)."""
    r = SCHEDULES.resolve(value)
    return ScheduleSpec(r.entry.name, r.kwargs)


def is_schedule(value) -> bool:
    n = value.name if isinstance(value, Spec) else name_of(value)
    return n is not None and SCHEDULES.find(n) is not None


def learning_rate(value) -> float | ScheduleSpec:
    """A positive number, or a schedule."""
    if is_schedule(value):
        return schedule(value)
    if isinstance(value, Spec):
        raise SCHEDULES.unknown(value.name)
    try:
        return positive_float(value)
    except ArgError as e:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise
        raise ArgError(
            f"expected a positive number or a schedule, got {describe(value)}",
            "for example learning_rate=1e-3 or "
            "learning_rate=ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)",
        ) from e


__all__ = ["SCHEDULES", "is_schedule", "learning_rate", "schedule"]
