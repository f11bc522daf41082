"""Weight initializers (Keras 3 names and defaults) and the `*_initializer=` converter."""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.errors import suggest
from transpiler.layers.args import ArgError, Spec, describe, name_of, number

# name -> the keyword arguments it accepts, with Keras 3 defaults
INITIALIZERS: dict[str, dict[str, object]] = {
    "glorot_uniform": {"seed": None},
    "glorot_normal": {"seed": None},
    "he_uniform": {"seed": None},
    "he_normal": {"seed": None},
    "lecun_uniform": {"seed": None},
    "lecun_normal": {"seed": None},
    "orthogonal": {"gain": 1.0, "seed": None},
    "zeros": {},
    "ones": {},
    "constant": {"value": 0.0},
    "random_uniform": {"minval": -0.05, "maxval": 0.05, "seed": None},
    "random_normal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "truncated_normal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "identity": {"gain": 1.0},
    "variance_scaling": {
        "scale": 1.0,
        "mode": "fan_in",
        "distribution": "truncated_normal",
        "seed": None,
    },
}

# Keras class names, so `GlorotUniform()` and `RandomNormal(stddev=0.02)` read as in Keras
CLASS_NAMES = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform",
    "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform",
    "LecunNormal": "lecun_normal",
    "Orthogonal": "orthogonal",
    "Zeros": "zeros",
    "Ones": "ones",
    "Constant": "constant",
    "RandomUniform": "random_uniform",
    "RandomNormal": "random_normal",
    "TruncatedNormal": "truncated_normal",
    "Identity": "identity",
    "VarianceScaling": "variance_scaling",
    # Keras's short aliases
    "one": "ones",
    "zero": "zeros",
    "uniform": "random_uniform",
    "normal": "random_normal",
}


@dataclass(frozen=True)
class Initializer:
    name: str
    kwargs: tuple[tuple[str, object], ...] = ()

    def get(self, key: str):
        return dict(self.kwargs).get(key, INITIALIZERS[self.name].get(key))


def initializer(value) -> Initializer:
    """`he_normal`, `"zeros"`, `RandomNormal(stddev=0.02)` -> an Initializer."""
    args: tuple = ()
    kwargs: dict = {}
    if isinstance(value, Spec):
        n, args, kwargs = value.name, value.args, value.kwargs_dict()
    else:
        n = name_of(value)
    if n is None:
        raise ArgError(f"expected an initializer, got {describe(value)}")
    canonical = CLASS_NAMES.get(n, n)
    if canonical not in INITIALIZERS:
        raise ArgError(
            f"unknown initializer '{n}'", suggest(n, list(INITIALIZERS) + list(CLASS_NAMES))
        )
    accepted = INITIALIZERS[canonical]
    names = list(accepted)
    if len(args) > len(names):
        raise ArgError(f"{n} takes at most {len(names)} positional arguments")
    merged = dict(zip(names, args))
    for key, v in kwargs.items():
        if key not in accepted:
            raise ArgError(f"{n} has no argument '{key}'", suggest(key, names))
        merged[key] = v
    for key, v in merged.items():
        if key in ("mode", "distribution"):
            merged[key] = name_of(v)
        elif key == "seed":
            if v is not None and not isinstance(v, int):
                raise ArgError(f"{n}: seed must be an integer, got {describe(v)}")
        else:
            merged[key] = number(v)
    return Initializer(canonical, tuple(sorted(merged.items())))


def optional_initializer(value) -> Initializer | None:
    return None if value is None else initializer(value)
