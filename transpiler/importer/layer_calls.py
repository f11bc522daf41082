"""A Keras layer config -> the .kdl layer call: `Conv2D(64, 7, strides=2, name=conv1_conv)`.

Every config key is accounted for: it is a catalogue argument (decoded by its kind:
initializer, regularizer, activation, wrapped layer, plain value), a Keras setting that
.kdl does not have but that is at its default (KERAS_ONLY: nothing is lost), or an error
naming the layer, its class and the key. The decoded arguments go through the catalogue's
own `bind`, so they are checked exactly as a hand-written file is; then only the ones
that differ from Keras's defaults are written, required ones by position, as people
write Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.emit.code.keras_args import compact, is_default
from transpiler.importer.errors import ImportFailure
from transpiler.importer.values import (
    activation_value,
    constraint_value,
    dtype_name,
    generic_value,
    initializer_value,
    kdl_text,
    plain,
    regularizer_value,
)
from transpiler.layers import LAYERS
from transpiler.layers.activations import activation
from transpiler.layers.args import Symbol, no_constraint
from transpiler.layers.base import Arg, Layer, LayerError
from transpiler.layers.initializers import initializer, optional_initializer
from transpiler.layers.regularizers import regularizer

#: Keras config keys .kdl has no argument for, with the value that means "not used";
#: any other value is an error (the model would compute something else)
KERAS_ONLY: dict[str, object] = {
    "quantization_config": None,
    "activity_regularizer": None,  # every Keras layer takes one; .kdl where it has effect
    "lora_rank": None,
    "lora_alpha": None,
    "lora_enabled": False,
    "sparse": False,
    "autocast": True,
    "unroll": False,
    "time_major": False,
    "zero_output_for_mask": False,  # (Bidirectional sets it on its layers: see nested_layer)
}
#: per class, where Keras's key is accepted with more values (class, key) -> check
_KEYS_IGNORED = {
    ("LSTM", "implementation"),
    ("GRU", "implementation"),
    ("SimpleRNN", "implementation"),
    ("Bidirectional", "merge_mode"),
}
#: where a custom layer of keras.applications may come from
APPLICATION_MODULES = {
    "LayerScale": ("keras.src.applications.convnext", "keras.applications.convnext"),
    "CustomScaleLayer": (
        "keras.src.applications.inception_resnet_v2",
        "keras.applications.inception_resnet_v2",
    ),
}
#: registered names of the classes ktrans's generated Keras code defines
_KTRANS_REGISTERED = {f"ktrans>{name}" for name in APPLICATION_MODULES}


@dataclass(frozen=True)
class LayerValue:
    """A wrapped layer given as an argument (Bidirectional(LSTM(...))): checked, and
    written (with its Keras name) by whoever writes the call around it."""

    layer: Layer
    prepared: Prepared
    name: str


def layer_class(name: str, cls: str, module: str | None, registered: str | None) -> type:
    """The catalogue class for a Keras layer, or an ImportFailure saying what to do."""
    if cls == "Lambda":
        raise ImportFailure(
            "a Lambda layer holds Python bytecode, which .kdl cannot read",
            "rewrite the lambda as a .kdl expression (x * 2.0, relu(x), mean(x, axis=1)) "
            "or with catalogue layers, in Keras before saving or in the imported file",
            key="function",
        ).at_layer(name, cls)
    if cls in APPLICATION_MODULES:
        if module in APPLICATION_MODULES[cls] or registered in _KTRANS_REGISTERED:
            return LAYERS[cls]
        key, value = ("registered_name", registered) if registered else ("module", module)
        raise ImportFailure(
            f"'{value}' is not keras.applications' {cls}, the only {cls} .kdl knows",
            f"if it computes what keras.applications' {cls} does, build the model with "
            f"that class ({APPLICATION_MODULES[cls][1]}) before saving; otherwise rewrite it "
            "with catalogue layers or .kdl expressions (docs/layers.md)",
            key=key,
        ).at_layer(name, cls)
    if _is_custom(module, registered):
        key, value = ("registered_name", registered) if registered else ("module", module)
        raise ImportFailure(
            f"'{value}' is a custom layer class, defined by the code that saved the model; "
            ".kdl cannot read that code",
            "rewrite the layer with catalogue layers or .kdl expressions (docs/layers.md), "
            "in Keras before saving or in the imported file",
            key=key,
        ).at_layer(name, cls)
    if cls in LAYERS:
        return LAYERS[cls]
    raise ImportFailure(
        f"Keras's {cls} has no .kdl layer yet",
        "see docs/layers.md for the catalogue; rewrite it with catalogue layers or .kdl "
        "expressions",
        key="class_name",
    ).at_layer(name, cls)


def _is_custom(module: str | None, registered: str | None) -> bool:
    """Keras 3 writes `module: "keras.layers"` and no registered name for its own layers,
    and `module: null` with the registered name (`package>Class`, or the bare class name
    of an unregistered class) for a user's; Keras 2 configs have neither key."""
    if module is None:
        return bool(registered)
    return module.split(".")[0] != "keras" or bool(registered)


def _decode(arg: Arg, value):
    convert = arg.convert
    if convert in (initializer, optional_initializer):
        return initializer_value(value)
    if convert is regularizer:
        return regularizer_value(value)
    if convert is no_constraint:
        return constraint_value(value)
    if convert is activation:
        return activation_value(value)
    if arg.name in ("layer", "backward_layer") and value is not None:
        return nested_layer(value)
    return generic_value(value)


def nested_layer(serialized) -> LayerValue:
    """A layer given as an argument: built (for checking) and written in full."""
    if not isinstance(serialized, dict) or not isinstance(serialized.get("config"), dict):
        raise ImportFailure("a wrapped layer that is not a layer config")
    config = dict(serialized["config"])
    # Keras sets this on the layers Bidirectional wraps; ktrans's Bidirectional does the same
    config.pop("zero_output_for_mask", None)
    name = str(config.get("name") or "")
    cls = layer_class(
        name,
        str(serialized.get("class_name")),
        serialized.get("module"),
        serialized.get("registered_name"),
    )
    try:
        p = prepare(cls, config)
    except ImportFailure as e:
        raise e.at_layer(name, cls.__name__) from None
    return LayerValue(p.layer(name), p, name)


def _for_bind(value):
    return value.layer if isinstance(value, LayerValue) else value


def decoded_arguments(cls: type, config: dict) -> dict:
    """The config's catalogue arguments, decoded; other keys checked and dropped."""
    signature = {a.name: a for a in cls.signature}
    decoded = {}
    for key, value in config.items():
        if key == "name":
            continue
        if key == "dtype":
            dtype = dtype_name(value)
            if dtype not in (None, "float32"):
                raise ImportFailure(
                    f"the dtype policy '{dtype}' is not supported: ktrans computes in float32",
                    "set dtype='float32' on the layer (or no mixed-precision policy)",
                    key="dtype",
                )
            continue
        if key == "trainable":
            if value is False:
                decoded["trainable"] = False
            continue
        if key in signature:
            try:
                decoded[key] = _decode(signature[key], value)
            except ImportFailure as e:
                raise e.at_key(key) from None
            continue
        if (cls.__name__, key) in _KEYS_IGNORED:
            continue
        if key in KERAS_ONLY and plain(value) == KERAS_ONLY[key]:
            continue
        accepted = ", ".join(signature) or "no arguments"
        raise ImportFailure(
            f"the setting {key}={str(plain(value))[:60]} has no .kdl argument "
            f"(.kdl's {cls.__name__} takes: {accepted})",
            "leave it at its default in Keras, or remove the layer",
            key=key,
        )
    return decoded


def _written(arg: Arg, raw, converted):
    """The value as the file writes it: the shortest form of ints and tuples of ints."""
    if isinstance(converted, tuple) and len(converted) == 1 and _all_ints(converted):
        try:
            if arg.convert(converted[0]) is not None:
                return converted[0]  # axis=[3] is axis=3
        except Exception:
            pass
    if _all_ints(converted):
        return _lists(compact(arg, converted))
    return raw


def _all_ints(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, tuple) and bool(value) and all(_all_ints(v) for v in value)


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


@dataclass
class Prepared:
    """A Keras layer checked by the catalogue: its class, the decoded arguments, the bound
    config, and the ktrans layer built from it (for its number of outputs)."""

    cls: type
    decoded: dict
    bound: dict
    trainable: bool

    def layer(self, name: str) -> Layer:
        return self.cls(dict(self.bound, trainable=self.trainable), name)


def prepare(cls: type, config: dict, build_config: dict | None = None) -> Prepared:
    decoded = decoded_arguments(cls, config)
    trainable = decoded.pop("trainable", True)
    try:
        bound = cls.bind((), {k: _for_bind(v) for k, v in decoded.items()})
        dropped = _saved_defaults(cls.__name__, decoded, bound, build_config or {})
        if dropped:
            for key in dropped:
                decoded.pop(key, None)
            bound = cls.bind((), {k: _for_bind(v) for k, v in decoded.items()})
    except LayerError as e:
        raise ImportFailure(e.message, e.hint, key=e.arg) from None
    return Prepared(cls, decoded, bound, trainable)


def _saved_defaults(cls: str, decoded: dict, bound: dict, build_config: dict) -> list[str]:
    """Arguments Keras saves with the value their default stands for (a pooling's strides
    as the pool size, an attention's value_dim as key_dim): left out, so the file reads as
    it was written and the graph is the same."""
    drop = []
    if "strides" in bound and "pool_size" in bound and bound["strides"] == bound["pool_size"]:
        drop.append("strides")
    if cls == "MultiHeadAttention":
        if bound.get("value_dim") == bound.get("key_dim"):
            drop.append("value_dim")
        query = (build_config.get("shapes_dict") or {}).get("query_shape")
        axes = bound.get("attention_axes")
        if (
            isinstance(query, list)
            and axes is not None
            and tuple(axes) == tuple(range(1, len(query) - 1))
        ):
            drop.append("attention_axes")
    if cls == "Bidirectional":
        forward, backward = decoded.get("layer"), decoded.get("backward_layer")
        if isinstance(forward, LayerValue) and isinstance(backward, LayerValue):
            flipped = dict(forward.layer.config, go_backwards=not forward.layer.go_backwards)
            mine = {k: v for k, v in flipped.items() if k != "name"}
            theirs = {k: v for k, v in backward.layer.config.items() if k != "name"}
            if type(forward.layer) is type(backward.layer) and mine == theirs:
                drop.append("backward_layer")
        if isinstance(forward, LayerValue) and forward.name.startswith("forward_"):
            # Keras names the wrapped copy forward_<name>; .kdl's Bidirectional does too
            decoded["layer"] = LayerValue(forward.layer, forward.prepared, forward.name[8:])
    return drop


@dataclass(frozen=True)
class CallText:
    """A layer call's text: `Dense(10, name=head)`, or one argument per line."""

    callee: str
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.callee}({', '.join(self.parts)})"

    def lines(self, indent: str) -> list[str]:
        """The call over several lines, its arguments indented by `indent`."""
        if not self.parts:
            return [str(self)]
        return [f"{self.callee}("] + [f"{indent}{p}," for p in self.parts] + [")"]


def _same_as_default(a: Arg, value) -> bool:
    """Keras's `axis=[-1]` is the default `-1` too (a one-item list of the default)."""
    if is_default(a, value):
        return True
    return isinstance(value, tuple) and len(value) == 1 and is_default(a, value[0])


def nested_values(p: Prepared) -> list[LayerValue]:
    """The layers given as arguments, in the order .kdl creates them."""
    return [v for a in p.cls.signature if isinstance(v := p.decoded.get(a.name), LayerValue)]


#: optional first arguments Keras code usually gives by position (`MaxPooling2D(3)`)
POSITIONAL_FIRST = {"pool_size", "padding", "cropping", "size", "max_value", "negative_slope"}


def render_call(
    p: Prepared, name: str | None, bare_ok=lambda n: True, nested: dict | None = None
) -> CallText:
    """The call's .kdl text; `name` is written when given; `nested` holds the text of
    each wrapped layer (by id), written first by the caller."""
    parts = []
    positional = True
    for a in p.cls.signature:
        value = p.bound.get(a.name)
        raw = p.decoded.get(a.name)
        if a.required and positional:
            parts.append(_value_text(a, raw, value, bare_ok, nested))
            continue
        written = a.name in p.decoded and not _same_as_default(a, value)
        if positional and written and a.name in POSITIONAL_FIRST:
            parts.append(_value_text(a, raw, value, bare_ok, nested))
            positional = False
            continue
        positional = False
        if not written:
            continue
        parts.append(f"{a.name}={_value_text(a, raw, value, bare_ok, nested)}")
    if not p.trainable:
        parts.append("trainable=false")
    if name is not None:
        parts.append(f"name={kdl_text(Symbol(name), bare_ok=bare_ok)}")
    return CallText(p.cls.__name__, tuple(parts))


def _value_text(arg: Arg, raw, converted, bare_ok, nested=None) -> str:
    if isinstance(raw, LayerValue):
        if nested is not None and id(raw) in nested:
            return nested[id(raw)]
        return str(render_call(raw.prepared, raw.name, bare_ok))
    return kdl_text(_written(arg, raw, converted), bare_ok=bare_ok)
