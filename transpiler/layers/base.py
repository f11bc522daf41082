"""The Layer base class, its argument declarations, weights, and the registry.

A layer is one class: its Keras signature (`signature`, with Keras defaults and
converters), `build` (validates input types, returns weights in Keras layout) and
`output_types`. Nothing else needs editing to add one: `@register` puts it in the catalogue.

Layers know nothing of source positions: they raise `LayerError`, and the graph builder
reports it at the call site (or at the argument, when `LayerError.arg` names one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from transpiler.errors import suggest
from transpiler.graph.types import FLOAT_DTYPES, Dim, TensorType, format_shape, num_elements
from transpiler.layers.args import ArgError, Converter, describe, positive_int
from transpiler.layers.initializers import Initializer, initializer
from transpiler.layers.regularizers import Regularizer

REQUIRED = object()


class LayerError(Exception):
    """A problem with a layer's arguments or inputs; `arg` names the argument at fault."""

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.arg = arg


@dataclass(frozen=True)
class Arg:
    """One constructor argument: name, converter, Keras default (REQUIRED if none)."""

    name: str
    convert: Converter
    default: object = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Weight:
    """A variable of a layer, in Keras's layout (Dense kernel is (in, out))."""

    name: str
    shape: tuple[int, ...]
    initializer: Initializer
    trainable: bool = True
    regularizer: Regularizer | None = None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class CallArg:
    """One argument of a layer's call, named as Keras's `call()` names it.

    `kind` says where a call's value goes: "tensor" (one positional tensor), "tensors"
    (every positional tensor: `Add()(a, b)`, `Add()([a, b])`), "states" (a list of
    tensors that follow the positional ones: `initial_state=[h, c]`), "keyword" (a tensor
    the layer reads by name from `CallArgs.tensors`: `attention_mask=m`, `mask=m`) or
    "flag" (a boolean in `CallArgs.options`: `use_causal_mask=true`)."""

    name: str
    kind: str
    required: bool = False


@dataclass(frozen=True)
class CallArgs:
    """The keyword arguments of one layer call that are not its positional tensors.

    `tensors` maps a "keyword" CallArg to its tensor (a TensorType while checking, an
    LTensor while lowering, a graph Value in a Node); `options` maps a "flag" CallArg to
    its value. A call without them has NO_CALL_ARGS."""

    tensors: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


NO_CALL_ARGS = CallArgs()

LAYERS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: adds the layer to the catalogue under its class name."""
    LAYERS[cls.__name__] = cls
    return cls


def snake_case(name: str) -> str:
    """Keras's auto-naming: Conv2D -> conv2d, BatchNormalization -> batch_normalization."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.lower()


# Arguments every layer takes, as in Keras.
COMMON_ARGS = (
    Arg("name", lambda v: v, None),
    Arg("trainable", lambda v: v, True),
    Arg("dtype", lambda v: v, None),
)


class Layer:
    """Base class. Subclasses set `signature`, `family` and implement build/output_types."""

    signature: ClassVar[tuple[Arg, ...]] = ()
    family: ClassVar[str] = "core"
    #: how many input tensors a call takes: (min, max); max None = any number
    num_inputs: ClassVar[tuple[int, int | None]] = (1, 1)
    #: whether the layer behaves differently in training (Dropout, BatchNormalization)
    has_training_mode: ClassVar[bool] = False
    #: Keras's supports_masking: a Keras mask on the first input passes on to the first
    #: output (unless `compute_mask` says otherwise); without it the mask is dropped, as
    #: Keras drops it. See transpiler/layers/masking.py.
    supports_masking: ClassVar[bool] = False
    #: Keras's call() arguments: how `layer(x, name=value)` in .kdl binds (see CallArg)
    call_signature: ClassVar[tuple[CallArg, ...]] = (CallArg("inputs", "tensors", True),)
    #: Keras's autocast: the layer computes in float32, so float inputs of another
    #: precision (float64, float16, bfloat16) are cast to float32 when it is called
    #: (`autocast_type`; the lowering casts them: transpiler/layers/masking.lower_layer).
    #: Expressions are Keras ops, which keep their inputs' dtype.
    autocast: ClassVar[bool] = True

    def __init__(self, config: dict, name: str) -> None:
        self.config = config
        self.name = name
        self.trainable = config.get("trainable", True)
        for key, value in config.items():
            setattr(self, key, value)
        self.weights: list[Weight] | None = None
        self.built_inputs: list[TensorType] | None = None

    # ------------------------------------------------------------ construction

    @classmethod
    def keras_class(cls) -> str:
        return cls.__name__

    @classmethod
    def bind(cls, args: Sequence, kwargs: dict) -> dict:
        """Binds positional and keyword arguments to the signature and converts each.

        Raises LayerError naming the argument on any problem.
        """
        sig = {a.name: a for a in cls.signature}
        if len(args) > len(cls.signature):
            raise LayerError(
                f"{cls.__name__} takes at most {len(cls.signature)} positional arguments "
                f"({', '.join(sig) or 'none'}); got {len(args)}",
                "pass the others by name",
            )
        raw: dict = {}
        for a, value in zip(cls.signature, args):
            raw[a.name] = value
        common = {a.name: a for a in COMMON_ARGS}
        for key, value in kwargs.items():
            if key not in sig and key not in common:
                raise LayerError(
                    f"{cls.__name__} has no argument '{key}'",
                    suggest(key, list(sig) + list(common))
                    or f"{cls.__name__} takes: {', '.join(sig) or 'no arguments'}",
                    arg=key,
                )
            if key in raw:
                raise LayerError(f"argument '{key}' is given twice", arg=key)
            raw[key] = value
        config: dict = {}
        for a in cls.signature:
            if a.name in raw:
                try:
                    config[a.name] = a.convert(raw[a.name])
                except ArgError as e:
                    raise LayerError(
                        f"{cls.__name__}: {a.name} {e.message}", e.hint, arg=a.name
                    ) from None
            elif a.required:
                raise LayerError(
                    f"{cls.__name__} needs the argument '{a.name}'",
                    f"for example {cls.__name__}({a.name}=...)",
                    arg=a.name,
                )
            else:
                config[a.name] = a.convert(a.default)
        for key in ("name", "trainable", "dtype"):
            if key in raw:
                config[key] = _common(cls.__name__, key, raw[key])
        config.setdefault("trainable", True)
        cls.validate(config)
        return config

    @classmethod
    def validate(cls, config: dict) -> None:
        """Checks across arguments (override); raise LayerError(arg=...)."""

    @classmethod
    def create(cls, *args, name: str | None = None, data_format: str = "channels_last", **kw):
        """Builds a layer directly from Python values (tests and tools use this)."""
        config = cls.bind(args, kw)
        if "data_format" in config and config["data_format"] is None:
            config["data_format"] = data_format
        return cls(config, name or config.get("name") or snake_case(cls.__name__))

    # ------------------------------------------------------------ calling

    def __call__(self, inputs: list[TensorType], call: CallArgs = NO_CALL_ARGS) -> list[TensorType]:
        """Type-checks one call (`inputs`: the positional tensors; `call`: keyword tensors
        and flags). The first call builds the weights; later calls (a shared layer) must
        give the same weight shapes."""
        lo, hi = self.num_inputs
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            want = str(lo) if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise LayerError(
                f"{self.keras_class()} takes {want} input tensor{'s' if want != '1' else ''}; "
                f"got {len(inputs)}"
            )
        if self.autocast:
            inputs = [autocast_type(t) for t in inputs]
        weights = self.build(inputs)
        if self.weights is None:
            self.weights = weights
            self.built_inputs = list(inputs)
        elif [w.shape for w in weights] != [w.shape for w in self.weights]:
            before = ", ".join(format_shape(t.shape) for t in self.built_inputs)
            now = ", ".join(format_shape(t.shape) for t in inputs)
            raise LayerError(
                f"shared layer '{self.name}' was built for input {before}; this call gives {now}",
                "a shared layer has one set of weights, so every call needs the same feature sizes",
            )
        self.check_call(inputs, call)
        outputs = self.output_types(inputs)
        return outputs if isinstance(outputs, list) else [outputs]

    def check_call(self, inputs: list[TensorType], call: CallArgs) -> None:
        """Checks a call's keyword tensors and flags against the inputs (override where
        `call_signature` has any); raise LayerError(arg=<call argument>)."""

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        """Validates the inputs and returns the weights (override)."""
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType | list[TensorType]:
        raise NotImplementedError

    def cannot_train(self) -> str | None:
        """Why ktrans cannot train this layer as configured (None: it can). `ktrans check`
        reports it at the layer's call when the model has a train block; docs/training.md
        lists these cases."""
        return None

    def adjust_initial_value(self, weight: Weight, value):
        """Hook for initial values no plain initializer gives (LSTM's unit_forget_bias)."""
        return value

    def lower(self, ctx, inputs: list) -> list:
        """ONNX lowering (inference): `ctx` is transpiler.emit.onnx.context.LowerContext,
        `inputs` and the result are LTensors. Override; see core.Dense for the pattern."""
        raise NotImplementedError("no ONNX lowering is written for this layer")

    def compute_mask(self, ctx, inputs: list, outputs: list) -> list:
        """Keras's compute_mask: the masks (bool ONNX value names, or None) of the lowered
        `outputs`, called after `lower` when an input carries one. Keras's default: the
        first input's mask on the first output, with `supports_masking`."""
        first = inputs[0].mask if self.supports_masking else None
        return [first] + [None] * (len(outputs) - 1)

    # ------------------------------------------------------------ helpers

    @property
    def param_count(self) -> int:
        return sum(w.size for w in self.weights or [])

    @property
    def trainable_count(self) -> int:
        if not self.trainable:
            return 0
        return sum(w.size for w in self.weights or [] if w.trainable)

    def weight(self, name, shape, init, *, trainable=True, regularizer=None) -> Weight:
        if not isinstance(init, Initializer):
            init = initializer(init)
        return Weight(name, tuple(int(d) for d in shape), init, trainable, regularizer)

    def fail(self, message: str, hint: str | None = None, arg: str | None = None):
        raise LayerError(message, hint, arg)

    def expect_float(self, t: TensorType) -> None:
        if t.dtype not in FLOAT_DTYPES:
            hint = "use Embedding first for integer token ids" if "int" in t.dtype else None
            self.fail(f"{self.keras_class()} expects a float tensor; got {t.dtype}", hint)

    def expect_rank(self, t: TensorType, rank: int | tuple[int, ...], layout: str = "") -> None:
        """`layout` names the axes without batch, e.g. '(height, width, channels)'."""
        ranks = (rank,) if isinstance(rank, int) else rank
        if t.rank not in ranks:
            want = " or ".join(str(r) for r in ranks)
            got = format_shape(t.shape)
            message = f"{self.keras_class()} expects a rank-{want} input; got {got}"
            hint = None
            if layout:
                fmt = getattr(self, "data_format", None)
                where = f" with data_format={fmt}" if fmt else ""
                hint = f"{self.keras_class()} needs (batch, {layout}){where}"
            self.fail(message, hint)

    def channels(self, t: TensorType) -> Dim:
        fmt = getattr(self, "data_format", "channels_last")
        return t.shape[1] if fmt == "channels_first" else t.shape[-1]

    def need_known(self, d: Dim, what: str) -> int:
        """A size that weights depend on must be known statically."""
        if not isinstance(d, int):
            self.fail(
                f"{self.keras_class()} needs a known {what} to create its weights; "
                f"it is dynamic here",
                "declare that axis with a number in the input's type",
            )
        return d

    def describe_config(self) -> str:
        """`Dense(64, activation=relu)`-style text for diagrams."""
        parts = []
        for a in self.signature:
            v = self.config.get(a.name)
            if a.required:
                parts.append(describe(v))
        return f"{self.keras_class()}({', '.join(parts)})"

    def __repr__(self) -> str:
        return f"<{self.keras_class()} {self.name}>"


def autocast_type(t: TensorType) -> TensorType:
    """What a float32 Keras layer makes of an input of type `t`: floats become float32,
    other dtypes stay."""
    if t.dtype in FLOAT_DTYPES and t.dtype != "float32":
        return TensorType("float32", t.shape)
    return t


def _common(layer: str, key: str, value):
    from transpiler.layers.args import boolean, name_of

    if key == "name":
        n = name_of(value)
        if n is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", n):
            raise LayerError(
                f"{layer}: name expected a name of letters, digits, '_', '-' or '.'; "
                f"got {describe(value)}",
                arg="name",
            )
        return n
    if key == "trainable":
        try:
            return boolean(value)
        except ArgError as e:
            raise LayerError(f"{layer}: trainable {e.message}", arg="trainable") from None
    if key == "dtype":
        n = name_of(value)
        if n not in (None, "float32"):
            raise LayerError(
                f"{layer}: dtype '{n}' is not supported; ktrans computes in float32",
                arg="dtype",
            )
        return n


def units_arg(name: str = "units") -> Arg:
    return Arg(name, positive_int)


__all__ = [
    "LAYERS",
    "NO_CALL_ARGS",
    "REQUIRED",
    "Arg",
    "CallArg",
    "CallArgs",
    "Layer",
    "LayerError",
    "Weight",
    "num_elements",
    "register",
    "snake_case",
]
