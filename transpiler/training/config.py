"""The checked form of a `train` block, and the machinery every catalogue shares.

A catalogue (`losses.LOSSES`, `optimizers.OPTIMIZERS`, ...) maps names to `Entry`s: the
Keras class, its arguments with Keras 3 defaults and converters, and extra checks.
`Catalogue.resolve` turns an evaluated .kdl value (a `Symbol`, a string or a `Spec`) into
the entry and its normalised keyword arguments, every default filled in, so an emitter
writes `keras.<module>.<keras_class>(**kwargs)`.

Problems raise `TrainError`, which knows nothing of source positions: its `path` says
where inside the value the culprit is (an int: a positional argument or list item; a
str: a keyword argument or dict key), and the checker maps the path onto the syntax tree.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from transpiler.errors import Span, suggest
from transpiler.layers.args import ArgError, Spec, describe, name_of
from transpiler.layers.base import REQUIRED, Arg

PathKey = int | str

#: arguments Keras 2 accepted under an older name: Keras 3 rejects them
KERAS2_NAMES = {"lr": "learning_rate"}


class TrainError(Exception):
    """A bad value in a train block; `path` leads from the item's value to the culprit,
    `at_name` points at a keyword's or key's name rather than its value."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        path: tuple[PathKey, ...] = (),
        at_name: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path
        self.at_name = at_name

    def within(self, *prefix: PathKey) -> TrainError:
        return TrainError(self.message, self.hint, (*prefix, *self.path), self.at_name)


@dataclass(frozen=True)
class Entry:
    """One loss, optimizer, metric, callback or schedule of the catalogue."""

    name: str  # canonical name: the Keras function name for losses/metrics, else the class
    keras_class: str
    args: tuple[Arg, ...]
    aliases: tuple[str, ...] = ()
    positional: int | None = None  # how many leading args may be positional (None: all)
    check: Callable[[dict], None] | None = None  # across arguments; TrainError(path=(arg,))
    fits: Callable[[dict, object], None] | None = None  # against an output's last dimension
    direction: str = "down"  # metrics: "up" when higher is better


@dataclass
class Resolved:
    entry: Entry
    kwargs: dict
    written: str  # the name as the user wrote it


class Catalogue:
    """Entries by every name they answer to."""

    def __init__(
        self,
        kind: str,
        entries: Iterable[Entry],
        ignore_case: bool = False,
        also: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.ignore_case = ignore_case
        #: names resolved before the catalogue is asked (`accuracy`), offered as suggestions
        self.also = also
        self.entries: list[Entry] = list(entries)
        self.names: dict[str, Entry] = {}
        for e in self.entries:
            for n in (e.name, e.keras_class, *e.aliases):
                self.names[self._key(n)] = e

    def _key(self, name: str) -> str:
        return name.lower() if self.ignore_case else name

    def find(self, name: str) -> Entry | None:
        return self.names.get(self._key(name))

    def unknown(self, name: str, hint: str | None = None) -> TrainError:
        return TrainError(f"unknown {self.kind} '{name}'", hint or self.suggest(name))

    def suggest(self, name: str) -> str:
        """`did you mean 'Adam'?` (matching case-insensitively where Keras does), else the
        list of known names."""
        pool = sorted({n for e in self.entries for n in (e.name, e.keras_class, *e.aliases)})
        pool = [*self.also, *pool]
        fold = str.lower if self.ignore_case else str
        keys = {fold(n): n for n in pool}
        close = difflib.get_close_matches(fold(name), keys, n=1, cutoff=0.6)
        flat = {n.replace("_", "").lower(): n for n in pool}
        match = keys[close[0]] if close else flat.get(name.replace("_", "").lower())
        if match:
            return f"did you mean '{match}'?"
        plural = self.kind + ("es" if self.kind.endswith("s") else "s")
        return f"known {plural}: {', '.join(e.name for e in self.entries)}"

    def resolve(self, value) -> Resolved:
        """A Symbol, string or Spec -> the entry and its normalised kwargs."""
        if isinstance(value, Spec):
            entry = self.find(value.name)
            if entry is None:
                raise self.unknown(value.name)
            return Resolved(entry, bind(entry, value.name, value.args, value.kwargs), value.name)
        n = name_of(value)
        if n is None:
            article = "an" if self.kind[0] in "aeiou" else "a"
            raise TrainError(f"expected {article} {self.kind}, got {describe(value)}")
        entry = self.find(n)
        if entry is None:
            raise self.unknown(n)
        return Resolved(entry, bind(entry, n, (), ()), n)


def bind(entry: Entry, written: str, args: Sequence, kwargs: Iterable[tuple[str, object]]) -> dict:
    """Binds a call's arguments to the entry's signature, converting each; fills defaults."""
    sig = {a.name: a for a in entry.args}
    limit = len(entry.args) if entry.positional is None else entry.positional
    if len(args) > limit:
        takes = (
            f"at most {limit} positional argument{'s' * (limit != 1)} "
            f"({', '.join(a.name for a in entry.args[:limit])})"
            if limit
            else "no positional arguments"
        )
        raise TrainError(
            f"{written} takes {takes}; got {len(args)}",
            "pass the others by name",
            path=(limit,),
        )
    raw: dict[str, tuple[PathKey, object]] = {}
    for i, (a, value) in enumerate(zip(entry.args, args)):
        raw[a.name] = (i, value)
    for key, value in kwargs:
        if key not in sig:
            renamed = KERAS2_NAMES.get(key)
            hint = (
                f"Keras 3 calls it '{renamed}' ('{key}' is the Keras 2 name)"
                if renamed in sig
                else None
            )
            hint = (
                hint
                or suggest(key, sig)
                or (
                    f"{written} takes: {', '.join(sig)}" if sig else f"{written} takes no arguments"
                )
            )
            raise TrainError(f"{written} has no argument '{key}'", hint, (key,), at_name=True)
        if key in raw:
            raise TrainError(
                f"{written}: argument '{key}' is given twice", path=(key,), at_name=True
            )
        raw[key] = (key, value)
    out: dict = {}
    for a in entry.args:
        if a.name in raw:
            where, value = raw[a.name]
            try:
                out[a.name] = a.convert(value)
            except ArgError as e:
                raise TrainError(f"{written}: {a.name} {e.message}", e.hint, (where,)) from None
            except TrainError as e:
                raise e.within(where) from None
        elif a.required:
            raise TrainError(
                f"{written} needs the argument '{a.name}'",
                f"for example {written}({a.name}=...)",
            )
        else:
            out[a.name] = a.convert(a.default)
    if entry.check is not None:
        try:
            entry.check(out)
        except TrainError as e:
            first = e.path[0] if e.path else None
            where = raw[first][0] if first in raw else None
            rest = e.path[1:]
            path = (where, *rest) if where is not None else ()
            raise TrainError(f"{written}: {e.message}", e.hint, path, e.at_name) from None
    return out


def defaults(entry: Entry) -> dict:
    """The entry's optional arguments with their normalised Keras defaults."""
    return {a.name: a.convert(a.default) for a in entry.args if a.default is not REQUIRED}


def written_at(entry: Entry, value, arg: str) -> tuple[PathKey, ...]:
    """Where the user wrote `arg` in a call: (keyword,), (position,), or () if defaulted."""
    if not isinstance(value, Spec):
        return ()
    if any(k == arg for k, _ in value.kwargs):
        return (arg,)
    names = [a.name for a in entry.args]
    i = names.index(arg)
    return (i,) if i < len(value.args) else ()


# ---------------------------------------------------------------- the checked train block


@dataclass
class LossSpec:
    name: str  # canonical Keras function name: "categorical_crossentropy"
    keras_class: str  # keras.losses.<keras_class>(**kwargs)
    kwargs: dict


@dataclass
class ScheduleSpec:
    name: str  # keras.optimizers.schedules.<name>(**kwargs)
    kwargs: dict


@dataclass
class OptimizerSpec:
    name: str  # keras.optimizers.<name>(**kwargs); learning_rate may be a ScheduleSpec
    kwargs: dict


@dataclass
class MetricSpec:
    name: str  # canonical Keras name: "sparse_categorical_accuracy"
    keras_class: str  # keras.metrics.<keras_class>(name=log_name, **kwargs)
    kwargs: dict
    log_name: str  # the key Keras logs it under (before any output prefix)
    alias: str | None = None  # "accuracy"/"acc" when Keras's compile picked the class
    direction: str = "up"


@dataclass
class CallbackSpec:
    name: str  # keras.callbacks.<name>(**kwargs); LearningRateScheduler.schedule is a
    kwargs: dict  # ScheduleSpec, stepped once per epoch


@dataclass
class TrainConfig:
    """A checked train block: everything `model.compile` and `model.fit` need."""

    name: str
    model: str
    span: Span
    outputs: list[str]  # the model's outputs, in order
    loss: dict[str, LossSpec]  # outputs without a loss are absent
    loss_weights: dict[str, float]  # one per output with a loss (1.0 unless given)
    optimizer: OptimizerSpec
    metrics: dict[str, list[MetricSpec]] = field(default_factory=dict)
    weighted_metrics: dict[str, list[MetricSpec]] = field(default_factory=dict)
    callbacks: list[CallbackSpec] = field(default_factory=list)
    batch_size: int = 32
    epochs: int = 1
    validation_split: float = 0.0
    shuffle: bool = True
    steps_per_epoch: int | None = None
    initial_epoch: int = 0
    validation_steps: int | None = None
    validation_batch_size: int | None = None
    validation_freq: int = 1
    verbose: str | int = "auto"
    steps_per_execution: int = 1
    data: dict = field(default_factory=dict)  # the `data { }` section (training/data.py)
