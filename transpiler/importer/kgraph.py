"""A Keras model config -> an intermediate graph: layers, their calls, the tensors between.

Reads the configs Keras 3 writes (`inbound_nodes` as `{"args": [...], "kwargs": {...}}`
with `__keras_tensor__` references) and the ones Keras 2 / tf.keras wrote (`inbound_nodes`
as lists of `[layer, node_index, tensor_index, kwargs]`), for Functional and Sequential
models, with models nested inside as layers (ConvNeXt's Sequential stages). Keras ops
called on symbolic tensors (`x + 3.0`, keras.ops.*) appear as layers whose module is
keras.src.ops; they are kept, marked `is_op`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from transpiler.importer.errors import ImportFailure
from transpiler.importer.values import dtype_name

MODEL_CLASSES = ("Functional", "Sequential", "Model")
INPUT_CLASSES = ("InputLayer",)
MAX_IO_NESTING = 8  # lists and dicts in input_layers / output_layers


@dataclass(frozen=True)
class Ref:
    """A tensor: output `index` of call `node` of layer `layer`."""

    layer: str
    node: int = 0
    index: int = 0


@dataclass(eq=False)
class Call:
    """One call of a layer (one of its inbound nodes)."""

    layer: KLayer
    node: int
    inputs: list[Ref]  # the tensors it takes, in order
    args: list  # positional arguments, tensors as Refs (what ops need)
    kwargs: dict


@dataclass(eq=False)
class KLayer:
    name: str
    class_name: str
    module: str | None
    registered_name: str | None
    config: dict
    position: int
    calls: list[Call] = field(default_factory=list)
    model: KModel | None = None  # a model used as a layer
    build_config: dict | None = None

    @property
    def is_op(self) -> bool:
        module = self.module or ""
        return module.startswith("keras.src.ops") or module.startswith("keras.ops")


@dataclass
class KInput:
    name: str
    shape: tuple  # without the batch axis; None where unknown
    dtype: str


@dataclass(eq=False)
class KModel:
    name: str
    kind: str  # "Functional" or "Sequential"
    layers: list[KLayer]
    inputs: list[KInput]
    input_refs: list[Ref]
    outputs: list[tuple[str, Ref]]
    outputs_are_named: bool  # a dict of outputs: the names are the user's
    trainable: bool = True


def read_model(serialized: dict) -> KModel:
    cls = serialized.get("class_name")
    config = serialized.get("config")
    if not isinstance(config, dict):
        raise ImportFailure("the model config has no 'config' object")
    if cls == "Sequential":
        return _sequential(config)
    if cls in ("Functional", "Model"):
        return _functional(config)
    raise ImportFailure(
        f"the file holds a {cls}, not a Sequential or functional model",
        "subclassed models have no config .kdl can read: build the model with the "
        "functional API or Sequential",
    )


# ---------------------------------------------------------------- inputs


def _input_from(layer_config: dict, name: str) -> KInput:
    config = layer_config
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if not isinstance(shape, list) or not shape:
        raise ImportFailure("the input has no batch_shape", key="batch_shape").at_layer(
            name, "InputLayer"
        )
    for flag in ("sparse", "ragged", "optional"):
        if config.get(flag):
            raise ImportFailure(
                f"{flag} inputs have no .kdl equivalent", "use a dense input", key=flag
            ).at_layer(name, "InputLayer")
    dtype = dtype_name(config.get("dtype")) or "float32"
    dims = tuple(d if isinstance(d, int) and d > 0 else None for d in shape[1:])
    return KInput(name, dims, dtype)


# ---------------------------------------------------------------- Sequential


def _layer(entry: dict, position: int) -> KLayer:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ImportFailure(f"layer {position} of the config is not a layer object")
    config = entry["config"]
    name = entry.get("name") or config.get("name")
    cls = entry.get("class_name")
    if not isinstance(name, str) or not isinstance(cls, str):
        raise ImportFailure(f"layer {position} of the config has no name or class")
    build = entry.get("build_config")
    layer = KLayer(
        name,
        cls,
        entry.get("module"),
        entry.get("registered_name"),
        config,
        position,
        build_config=build if isinstance(build, dict) else None,
    )
    if cls in MODEL_CLASSES:
        try:
            layer.model = read_model(entry)
        except ImportFailure as e:
            raise e.at_layer(name, cls) from None
    return layer


def _sequential(config: dict) -> KModel:
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ImportFailure("the Sequential config has no layers")
    name = str(config.get("name") or "sequential")
    layers = [_layer(e, i) for i, e in enumerate(entries)]
    inputs: list[KInput] = []
    if layers and layers[0].class_name in INPUT_CLASSES:
        first = layers.pop(0)
        inputs.append(_input_from(first.config, first.name))
    elif layers:
        shape = layers[0].config.get("batch_input_shape") or layers[0].config.get("batch_shape")
        if shape is None:
            shape = config.get("build_input_shape")
        if shape is None:
            raise ImportFailure(
                f"the Sequential model '{name}' has no input shape",
                "build the model (model.build or a keras.Input first) before saving it",
            )
        inputs.append(_input_from({"batch_shape": shape, "dtype": "float32"}, f"{name}_input"))
    if not layers:
        raise ImportFailure(f"the Sequential model '{name}' has no layers")
    previous = Ref(inputs[0].name)
    for layer in layers:
        layer.calls.append(Call(layer, 0, [previous], [previous], {}))
        previous = Ref(layer.name)
    return KModel(
        name,
        "Sequential",
        layers,
        inputs,
        [Ref(inputs[0].name)],
        [(layers[-1].name, previous)],
        False,
        bool(config.get("trainable", True)),
    )


# ---------------------------------------------------------------- Functional


def _ref(value) -> Ref | None:
    """A tensor reference in either config format, else None."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = (value.get("config") or {}).get("keras_history")
        if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str):
            return Ref(history[0], int(history[1]), int(history[2]))
        raise ImportFailure("a tensor reference without keras_history")
    if (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and all(isinstance(v, int) for v in value[1:3])
    ):
        return Ref(value[0], value[1], value[2])
    return None


def _substitute(value):
    """Tensors in an argument structure become Refs."""
    ref = _ref(value)
    if ref is not None:
        return ref
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _substitute(v) for k, v in value.items()}
    return value


def _refs_in(value) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, list):
        return [r for v in value for r in _refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs_in(v)]
    return []


def _calls(layer: KLayer, nodes) -> list[Call]:
    if not isinstance(nodes, list):
        raise ImportFailure("inbound_nodes is not a list", key="inbound_nodes")
    calls = []
    for i, node in enumerate(nodes):
        if isinstance(node, dict):  # Keras 3
            args = _substitute(node.get("args", []))
            kwargs = _substitute(node.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ImportFailure("an inbound node is malformed", key="inbound_nodes")
        elif isinstance(node, list):  # Keras 2: [[layer, node, index, kwargs], ...]
            args, kwargs = [], {}
            for item in node:
                ref = _ref(item)
                if ref is None:
                    raise ImportFailure("an inbound node is malformed", key="inbound_nodes")
                args.append(ref)
                if len(item) == 4 and isinstance(item[3], dict):
                    kwargs.update(_substitute(item[3]))
            if len(args) > 1:
                args = [args]  # Keras 2 called multi-input layers with a list
        else:
            raise ImportFailure("an inbound node is malformed", key="inbound_nodes")
        inputs = _refs_in(args) + _refs_in(kwargs)
        calls.append(Call(layer, i, inputs, args, kwargs))
    return calls


def _io_refs(value, what: str, depth: int = 0) -> list[tuple[str | None, Ref]]:
    """The tensors of a model's `input_layers` or `output_layers`, in order, each with its
    dict key where it has one: one tensor, a list (nested too), or a dict (Keras matches a
    dict of inputs by key when the model is called, and returns outputs by key)."""
    ref = _ref(value)
    if ref is not None:
        return [(None, ref)]
    if isinstance(value, list) and depth < MAX_IO_NESTING:
        return [item for v in value for item in _io_refs(v, what, depth + 1)]
    if isinstance(value, dict) and depth < MAX_IO_NESTING:
        found = []
        for key, v in value.items():
            inner = _io_refs(v, what, depth + 1)
            found.extend([(str(key), inner[0][1])] if len(inner) == 1 else inner)
        return found
    raise ImportFailure(
        f"cannot read the model's {what}: expected tensor references ([layer, node, index]) "
        "in a list or dict",
        "re-save the model with Keras 3 (model.save('model.keras'))",
        key=what,
    )


def _functional(config: dict) -> KModel:
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ImportFailure("the functional model's config has no layers")
    name = str(config.get("name") or "model")
    layers: list[KLayer] = []
    input_layers: dict[str, KInput] = {}
    for i, entry in enumerate(entries):
        layer = _layer(entry, i)
        if layer.class_name in INPUT_CLASSES:
            input_layers[layer.name] = _input_from(layer.config, layer.name)
            continue
        try:
            layer.calls = _calls(layer, entry.get("inbound_nodes", []))
        except ImportFailure as e:
            raise e.at_layer(layer.name, layer.class_name) from None
        layers.append(layer)
    inputs, input_refs = [], []
    for key, ref in _io_refs(config.get("input_layers"), "input_layers"):
        if ref.layer not in input_layers:
            raise ImportFailure(f"the model input '{ref.layer}' is not an InputLayer")
        kin = input_layers[ref.layer]
        inputs.append(kin if key is None else replace(kin, name=key))
        input_refs.append(ref)
    raw_outputs = config.get("output_layers")
    named = isinstance(raw_outputs, dict)
    outputs = [(key or r.layer, r) for key, r in _io_refs(raw_outputs, "output_layers")]
    return KModel(
        name,
        "Functional",
        layers,
        inputs,
        input_refs,
        outputs,
        named,
        bool(config.get("trainable", True)),
    )
