"""Weight regularizers: l1, l2, l1_l2 (Keras 3 defaults 0.01) and the converter."""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.errors import suggest
from transpiler.layers.args import ArgError, Spec, describe, name_of, non_negative_float

REGULARIZERS = ("l1", "l2", "l1_l2")
CLASS_NAMES = {"L1": "l1", "L2": "l2", "L1L2": "l1_l2"}


@dataclass(frozen=True)
class Regularizer:
    """penalty = l1 * sum(|w|) + l2 * sum(w^2)."""

    l1: float = 0.0
    l2: float = 0.0


def regularizer(value) -> Regularizer | None:
    if value is None:
        return None
    args: tuple = ()
    kwargs: dict = {}
    if isinstance(value, Spec):
        n, args, kwargs = value.name, value.args, value.kwargs_dict()
    else:
        n = name_of(value)
    if n is None:
        raise ArgError(f"expected a regularizer such as l2(1e-4), got {describe(value)}")
    canonical = CLASS_NAMES.get(n, n)
    if canonical not in REGULARIZERS:
        raise ArgError(f"unknown regularizer '{n}'", suggest(n, REGULARIZERS))
    names = {"l1": ["l1"], "l2": ["l2"], "l1_l2": ["l1", "l2"]}[canonical]
    defaults = {"l1": {"l1": 0.01}, "l2": {"l2": 0.01}, "l1_l2": {"l1": 0.0, "l2": 0.0}}
    values = dict(defaults[canonical])
    if len(args) > len(names):
        raise ArgError(f"{n} takes at most {len(names)} positional arguments")
    values.update(zip(names, args))
    for key, v in kwargs.items():
        if key not in names:
            raise ArgError(f"{n} has no argument '{key}'", suggest(key, names))
        values[key] = v
    return Regularizer(**{k: non_negative_float(v) for k, v in values.items()})


#: layers whose Keras class accepts activity_regularizer and drops it (Keras 3's SimpleRNN
#: never hands it to its base layer: keras/src/layers/rnn/simple_rnn.py)
KERAS_IGNORES_ACTIVITY = frozenset({"SimpleRNN"})


def activity_regularizer(layer) -> Regularizer | None:
    """The regularizer Keras applies to this layer's outputs, or None."""
    if layer.keras_class() in KERAS_IGNORES_ACTIVITY:
        return None
    return getattr(layer, "activity_regularizer", None)
