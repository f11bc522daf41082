"""Keras's learning-rate schedules (keras.optimizers.schedules), in float64, then
rounded to float32 as Keras holds the rate. A schedule is written as data:
{"name": "CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 1000, ...}, with
every argument given."""

from __future__ import annotations

import math

import numpy as np


def exponential_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return initial_learning_rate * decay_rate**p


def inverse_time_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase):
    p = step / decay_steps
    if staircase:
        p = math.floor(p)
    return initial_learning_rate / (1 + decay_rate * p)


def _cosine(step, decay_steps, decay_from, alpha):
    decayed = 0.5 * (1 + math.cos(math.pi * step / decay_steps))
    return decay_from * ((1 - alpha) * decayed + alpha)


def cosine_decay(step, initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps):
    if warmup_target is None:
        step = min(step, decay_steps)
        return _cosine(step, decay_steps, initial_learning_rate, alpha)
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        delta = warmup_target - initial_learning_rate
        return delta * (step / warmup_steps) + initial_learning_rate
    return _cosine(step - warmup_steps, decay_steps, warmup_target, alpha)


def cosine_decay_restarts(step, initial_learning_rate, first_decay_steps, t_mul, m_mul, alpha):
    fraction = step / first_decay_steps
    if t_mul == 1.0:
        restart = math.floor(fraction)
        fraction -= restart
    else:
        restart = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul))
        done = (1 - t_mul**restart) / (1 - t_mul)
        fraction = (fraction - done) / t_mul**restart
    cosine = 0.5 * m_mul**restart * (1 + math.cos(math.pi * fraction))
    return initial_learning_rate * ((1 - alpha) * cosine + alpha)


def polynomial_decay(step, initial_learning_rate, decay_steps, end_learning_rate, power, cycle):
    if cycle:
        decay_steps *= 1 if step == 0 else math.ceil(step / decay_steps)
    else:
        step = min(step, decay_steps)
    span = initial_learning_rate - end_learning_rate
    return span * (1 - step / decay_steps) ** power + end_learning_rate


def piecewise_constant_decay(step, boundaries, values):
    for boundary, value in zip(boundaries, values):
        if step <= boundary:
            return value
    return values[-1]


SCHEDULES = {
    "ExponentialDecay": exponential_decay,
    "InverseTimeDecay": inverse_time_decay,
    "CosineDecay": cosine_decay,
    "CosineDecayRestarts": cosine_decay_restarts,
    "PolynomialDecay": polynomial_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
}


def schedule_value(schedule: dict, step: int) -> float:
    """A schedule at `step` (a batch count, or an epoch for LearningRateScheduler)."""
    kwargs = {k: v for k, v in schedule.items() if k != "name"}
    return float(np.float32(SCHEDULES[schedule["name"]](step, **kwargs)))


def is_schedule(learning_rate) -> bool:
    return isinstance(learning_rate, dict)
