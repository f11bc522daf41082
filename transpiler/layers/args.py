"""Argument values and the converters that validate them (one place for all layers).

A converter takes the evaluated .kdl value and returns the normalised Python value, or
raises `ArgError` with a message in Keras's style ("expected a positive integer").
Bare names in .kdl (`relu`, `same`, `channels_last`) arrive as `Symbol`s; calls of names
that are not layers (`l2(1e-4)`, `RandomNormal(stddev=0.02)`) arrive as `Spec`s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from transpiler.errors import Span, suggest


class ArgError(Exception):
    """A bad argument value: `message` says what was expected, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Symbol:
    """A bare name used as a value: an activation, a padding mode, a loss..."""

    name: str
    span: Span | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Spec:
    """A call of a named thing that is not a layer: `l2(1e-4)`, `Adam(learning_rate=1e-3)`."""

    name: str
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    span: Span | None = field(default=None, compare=False)

    def kwargs_dict(self) -> dict:
        return dict(self.kwargs)


Converter = Callable[[object], object]


def describe(value) -> str:
    """A value as the user wrote it, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, Spec):
        return f"{value.name}(...)"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    type_name = getattr(type(value), "kdl_kind", None)
    if type_name:
        return type_name
    return str(value)


def name_of(value) -> str | None:
    """The name in a Symbol, a string, or a named callable reference; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, Symbol):
        return value.name
    return getattr(value, "symbol_name", None)


# ---------------------------------------------------------------- scalars


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(value) -> int:
    if not is_int(value):
        raise ArgError(f"expected an integer, got {describe(value)}")
    return value


def positive_int(value) -> int:
    if not is_int(value) or value <= 0:
        raise ArgError(f"expected a positive integer, got {describe(value)}")
    return value


def non_negative_int(value) -> int:
    if not is_int(value) or value < 0:
        raise ArgError(f"expected a non-negative integer, got {describe(value)}")
    return value


def number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgError(f"expected a number, got {describe(value)}")
    if not math.isfinite(value):
        raise ArgError(f"expected a finite number, got {value}")
    return float(value)


def float_in(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Converter:
    """A number in [lo, hi] (or open at either end)."""

    def convert(value) -> float:
        x = number(value)
        ok_lo = x > lo if lo_open else x >= lo
        ok_hi = x < hi if hi_open else x <= hi
        if not (ok_lo and ok_hi):
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            raise ArgError(f"expected a number in {left}{lo:g}, {hi:g}{right}, got {x:g}")
        return x

    return convert


def non_negative_float(value) -> float:
    x = number(value)
    if x < 0:
        raise ArgError(f"expected a non-negative number, got {x:g}")
    return x


def positive_float(value) -> float:
    x = number(value)
    if x <= 0:
        raise ArgError(f"expected a positive number, got {x:g}")
    return x


def boolean(value) -> bool:
    if not isinstance(value, bool):
        hint = None
        if name_of(value) in ("true", "false", "yes", "no"):
            hint = "write true or false"
        raise ArgError(f"expected true or false, got {describe(value)}", hint)
    return value


def string(value) -> str:
    n = name_of(value)
    if n is None:
        raise ArgError(f"expected a name or a string, got {describe(value)}")
    return n


def choice(*options: str) -> Converter:
    """One of a fixed set of names; `same` and `"same"` both work. Case-insensitive like Keras."""

    def convert(value) -> str:
        n = name_of(value)
        if n is None or n.lower() not in options:
            hint = suggest(n, options) if n else None
            listed = ", ".join(options)
            raise ArgError(f"expected one of {listed}; got {describe(value)}", hint)
        return n.lower()

    return convert


def optional(convert: Converter) -> Converter:
    def wrapped(value):
        return None if value is None else convert(value)

    return wrapped


# ---------------------------------------------------------------- tuples


def int_tuple(n: int, *, minimum: int = 1, what: str = "integer") -> Converter:
    """An int or a list of `n` ints, each >= minimum (Keras's standardize_tuple)."""

    def convert(value) -> tuple[int, ...]:
        if is_int(value):
            items = (value,) * n
        elif isinstance(value, (list, tuple)) and len(value) == n and all(map(is_int, value)):
            items = tuple(value)
        else:
            raise ArgError(f"expected an {what} or a list of {n} {what}s, got {describe(value)}")
        if any(i < minimum for i in items):
            bound = "positive" if minimum == 1 else f">= {minimum}"
            raise ArgError(f"expected {bound} values, got {describe(value)}")
        return items

    return convert


def int_list(value) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)) and all(map(is_int, value)):
        return tuple(value)
    if is_int(value):
        return (value,)
    raise ArgError(f"expected a list of integers, got {describe(value)}")


def padding_pairs(n: int) -> Converter:
    """ZeroPadding/Cropping: int, n ints, or n pairs of ints -> n (before, after) pairs."""

    def convert(value) -> tuple[tuple[int, int], ...]:
        if is_int(value) and value >= 0:
            return ((value, value),) * n
        if isinstance(value, (list, tuple)) and len(value) == n:
            pairs = []
            for item in value:
                if is_int(item) and item >= 0:
                    pairs.append((item, item))
                elif (
                    isinstance(item, (list, tuple))
                    and len(item) == 2
                    and all(is_int(i) and i >= 0 for i in item)
                ):
                    pairs.append(tuple(item))
                else:
                    break
            else:
                return tuple(pairs)
        if (
            n == 1
            and isinstance(value, (list, tuple))
            and len(value) == 2
            and all(is_int(i) and i >= 0 for i in value)
        ):
            return (tuple(value),)
        raise ArgError(
            f"expected a non-negative integer, {n} integers, or {n} pairs of integers; "
            f"got {describe(value)}"
        )

    return convert


# ---------------------------------------------------------------- named things


def data_format(value) -> str | None:
    if value is None:
        return None
    n = name_of(value)
    aliases = {"tf": "channels_last", "th": "channels_first"}
    if n in aliases:
        return aliases[n]
    return choice("channels_last", "channels_first")(value)


def no_constraint(value) -> None:
    """Weight constraints (kernel_constraint=...) are accepted only as none."""
    if value is not None:
        raise ArgError("constraints are not supported yet; remove the argument")
    return None


def padding(value) -> str:
    return choice("valid", "same")(value)
