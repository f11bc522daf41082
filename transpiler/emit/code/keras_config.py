"""Graph -> the Keras 3 config of the model that `ktrans codegen --target keras` builds:
the `config.json` of a `.keras` archive, which `keras.saving.load_model` turns back into
that model (with the weights beside it).

    {"module": "keras.src.models.functional", "class_name": "Functional",
     "config": {"name": ..., "trainable": true, "layers": [...],
                "input_layers": ..., "output_layers": ...},
     "registered_name": "Functional", "build_config": {"input_shape": null},
     "compile_config": {...}}            # with a default train block

It follows the generated code call for call, so the two models are the same: layers carry
the arguments `keras_args.written_args` writes (the others take Keras's defaults when
Keras reads the config); expressions are the keras.ops operations the code calls
(`keras_config_ops`), named as Keras names them; every layer call is an inbound node
whose arguments refer to tensors by `[operation, node index, tensor index]`, as
`Functional.get_config` writes them. A block the code writes as a nested model
(keras_nesting) is a nested `Sequential` or `Functional` config, called as a layer is.
Compile settings mirror `compile_model()`
(keras_compile.py). No Keras is needed to write it: it is plain JSON data.
"""

from __future__ import annotations

from transpiler.emit.code.keras_args import (
    compact,
    initializer_parts,
    normalized,
    regularizer_parts,
    written_args,
)
from transpiler.emit.code.keras_config_ops import expression_ops
from transpiler.emit.code.keras_names import CodegenError, checked
from transpiler.emit.code.keras_nesting import SubModel, nested_view
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.layers.base import Layer, snake_case
from transpiler.layers.initializers import Initializer
from transpiler.layers.regularizers import Regularizer

LAYERS_MODULE = "keras.layers"


def serialized(module: str, class_name: str, config: dict) -> dict:
    """A Keras object as `keras.saving.serialize_keras_object` writes it."""
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def json_value(value):
    """A layer argument as Keras stores it in a config."""
    if isinstance(value, Layer):
        return layer_entry(value)
    if isinstance(value, Initializer):
        cls, kwargs = initializer_parts(value)
        return serialized("keras.initializers", cls, {k: json_value(v) for k, v in kwargs.items()})
    if isinstance(value, Regularizer):
        cls, kwargs = regularizer_parts(value)
        return serialized("keras.regularizers", cls, kwargs)
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    name = getattr(value, "name", None)
    if isinstance(name, str) and type(value).__name__ == "Symbol":
        return name
    raise CodegenError(f"cannot write a {type(value).__name__} value in a Keras config")


#: arguments a Keras class's `from_config` reads whether or not they differ from the
#: default (Rescaling.from_config deserializes config["offset"])
READ_BY_FROM_CONFIG = {"Rescaling": ("offset",)}


def layer_config(layer: Layer) -> dict:
    """The layer's `config`: its name and the arguments the generated code writes (and
    those its class's from_config reads in any case)."""
    config = {"name": layer.name}
    for arg, value, _ in written_args(layer):
        config[arg.name] = json_value(compact(arg, value))
    for name in READ_BY_FROM_CONFIG.get(layer.keras_class(), ()):
        if name not in config:
            arg = next(a for a in layer.signature if a.name == name)
            config[name] = json_value(compact(arg, layer.config.get(name)))
    if not layer.trainable:
        config["trainable"] = False
    return config


def layer_entry(layer: Layer) -> dict:
    """The serialized layer: a `keras.layers` class, or one of the classes the generated
    module defines (keras_custom.py), registered under the package "ktrans": Keras finds
    it by that name once the module is imported."""
    from transpiler.emit.code.keras_custom import CUSTOM_CLASSES

    cls = checked(layer.keras_class())
    if cls not in CUSTOM_CLASSES:
        return serialized(LAYERS_MODULE, cls, layer_config(layer))
    entry = serialized("ktrans", cls, layer_config(layer))
    entry["registered_name"] = f"ktrans>{cls}"
    return entry


class TensorRef:
    """A tensor of the Keras graph: who made it, and its type."""

    def __init__(self, history: list, shape: list, dtype: str) -> None:
        self.history, self.shape, self.dtype = history, shape, dtype

    def json(self) -> dict:
        config = {"shape": self.shape, "dtype": self.dtype, "keras_history": self.history}
        return {"class_name": "__keras_tensor__", "config": config}


def _shape(t) -> list:
    """A type's shape as Keras writes it: None for the batch and the dynamic axes."""
    dims = t.shape[1:]
    return [None, *(d if isinstance(d, int) and not isinstance(d, bool) else None for d in dims)]


def _args_json(value):
    if isinstance(value, TensorRef):
        return value.json()
    if isinstance(value, (list, tuple)):
        return [_args_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _args_json(v) for k, v in value.items()}
    return value


def input_layer_entry(v, name: str) -> dict:
    config = {"batch_shape": _shape(v.type), "dtype": v.type.dtype, "name": name}
    return serialized(LAYERS_MODULE, "InputLayer", config)


def sub_model_entry(sub: SubModel) -> dict:
    """A nested model as Keras serializes it inside the enclosing model's config."""
    if sub.sequential:
        (v,) = sub.graph.inputs
        inner = [input_layer_entry(v, sub.input_names[0])]
        for node in sub.graph.nodes:
            layer = node.layer
            inner.append(
                sub_model_entry(layer) if isinstance(layer, SubModel) else layer_entry(layer)
            )
        config = {"name": sub.name, "trainable": True, "layers": inner}
        entry = serialized("keras", "Sequential", config)
    else:
        config = ConfigBuilder(sub.graph, sub).build()
        entry = serialized("keras.src.models.functional", "Functional", config)
        entry["registered_name"] = "Functional"
    return entry


class ConfigBuilder:
    """Builds `layers`, `input_layers` and `output_layers` of the functional config of a
    level of keras_nesting.nested_view: the model, or the nested model `sub`."""

    def __init__(self, graph: Graph, sub: SubModel | None = None) -> None:
        self.graph = graph
        self.sub = sub
        self.input_names = list(sub.input_names) if sub else [v.name for v in graph.inputs]
        self.layers: list[dict] = []
        self.by_layer: dict[int, dict] = {}
        self.refs: dict[int, TensorRef] = {}
        from transpiler.emit.code.keras_ops import keeps_name

        # names taken: inputs, layers, and the expressions written as named layers
        self.used = set(self.input_names)
        self.used |= {la.name for la in graph.layers if la.family != "expression" or keeps_name(la)}

    def fresh(self, base: str) -> str:
        """Keras's automatic name: `base`, `base_1`, ... (never a name in use)."""
        name, n = base, 0
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def op(self, class_name: str, module: str, config: dict, args: list, like: TensorRef, **kw):
        """Appends a keras.ops operation called on `args`; its output (typed as `like`
        unless `shape` is given)."""
        name = self.fresh(snake_case(class_name))
        entry = serialized(module, class_name, {"name": name, **config})
        entry["name"] = name
        entry["inbound_nodes"] = [{"args": _args_json(args), "kwargs": {}}]
        self.layers.append(entry)
        shape = kw.get("shape", like.shape)
        return TensorRef([name, 0, 0], shape, like.dtype)

    def layer_call(self, layer: Layer, args: list, kwargs: dict, outputs) -> list[TensorRef]:
        entry = self.by_layer.get(id(layer))
        if entry is None:
            entry = sub_model_entry(layer) if isinstance(layer, SubModel) else layer_entry(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
            self.by_layer[id(layer)] = entry
            self.layers.append(entry)
        entry["inbound_nodes"].append({"args": _args_json(args), "kwargs": _args_json(kwargs)})
        index = len(entry["inbound_nodes"]) - 1
        return [
            TensorRef([layer.name, index, i], _shape(v.type), v.type.dtype)
            for i, v in enumerate(outputs)
        ]

    def build(self) -> dict:
        from transpiler.layers.recurrent import Recurrent
        from transpiler.layers.recurrent_wrappers import Bidirectional

        graph = self.graph
        for v, name in zip(graph.inputs, self.input_names):
            entry = input_layer_entry(v, name)
            entry["name"] = name
            entry["inbound_nodes"] = []
            self.layers.append(entry)
            self.refs[id(v)] = TensorRef([name, 0, 0], _shape(v.type), v.type.dtype)
        for node in graph.nodes:
            inputs = [self.refs[id(v)] for v in node.inputs]
            layer = node.layer
            if layer.family == "expression":
                out = expression_ops(self, node, inputs)
                self.refs[id(node.outputs[0])] = out
                continue
            args: list = list(inputs)
            kwargs: dict = {}
            several = isinstance(layer, SubModel) and len(inputs) > 1
            if several or layer.family == "merge":
                args = [inputs]
            elif isinstance(layer, (Recurrent, Bidirectional)) and len(inputs) > 1:
                args, kwargs = [inputs[0]], {"initial_state": inputs[1:]}
            for v, ref in zip(node.outputs, self.layer_call(layer, args, kwargs, node.outputs)):
                self.refs[id(v)] = ref
        ins = [self.refs[id(v)].history for v in graph.inputs]
        outs = {name: self.refs[id(v)].history for name, v in graph.outputs.items()}
        if len(outs) == 1:
            output_layers = next(iter(outs.values()))
        else:  # a nested model's outputs are a list (KerasWriter.model_expr)
            output_layers = list(outs.values()) if self.sub is not None else outs
        return {
            "name": graph.name,
            "trainable": True,
            "layers": self.layers,
            "input_layers": ins[0] if len(ins) == 1 else ins,
            "output_layers": output_layers,
        }


def keras_model_config(graph: Graph) -> dict:
    """The config.json of a `.keras` archive of `graph` (module docstring)."""
    try:
        config = ConfigBuilder(nested_view(graph)).build()
        train = graph.trains.get("default") if graph.trains else None
        compile_config = compile_settings(train) if train is not None else None
    except CodegenError as e:
        raise KdlErrors(
            [KdlError(None, f"cannot write a Keras config for model '{graph.name}': {e}")]
        ) from None
    out = serialized("keras.src.models.functional", "Functional", config)
    out["registered_name"] = "Functional"
    out["build_config"] = {"input_shape": None}
    if compile_config is not None:
        out["compile_config"] = compile_config
    return out


# ------------------------------------------------------------------ compile settings


def _nondefault(entry, kwargs: dict, skip: tuple[str, ...] = ()) -> dict:
    from transpiler.training.config import ScheduleSpec, defaults

    base = defaults(entry) if entry is not None else {}
    out = {}
    for key, value in kwargs.items():
        if key in skip or (key in base and normalized(base[key]) == normalized(value)):
            continue
        if isinstance(value, ScheduleSpec):
            from transpiler.training.schedules import SCHEDULES

            schedule = _nondefault(SCHEDULES.find(value.name), value.kwargs)
            value = serialized("keras.optimizers.schedules", checked(value.name), schedule)
        elif isinstance(value, tuple):
            value = list(value)
        out[checked(key)] = value
    return out


def compile_settings(config) -> dict:
    """The `compile_config` Keras reads back into `model.compile(**...)`: what
    `compile_model()` of the generated code passes."""
    from transpiler.training.losses import LOSSES
    from transpiler.training.metrics import METRICS
    from transpiler.training.optimizers import OPTIMIZERS

    opt = config.optimizer
    optimizer = serialized(
        "keras.optimizers", checked(opt.name), _nondefault(OPTIMIZERS.find(opt.name), opt.kwargs)
    )
    outputs = list(config.outputs)
    single = len(outputs) == 1

    def loss(spec) -> dict:
        kwargs = _nondefault(LOSSES.find(spec.name), spec.kwargs)
        return serialized("keras.losses", checked(spec.keras_class), kwargs)

    def metric(spec) -> dict:
        kwargs = _nondefault(METRICS.find(spec.name), spec.kwargs, skip=("name",))
        if spec.log_name != spec.name:
            kwargs["name"] = spec.log_name
        return serialized("keras.metrics", checked(spec.keras_class), kwargs)

    def per_output(values: dict, make, empty):
        if not values:
            return None
        if single:
            return make(values[outputs[0]]) if outputs[0] in values else None
        return {o: make(values[o]) if o in values else empty for o in outputs}

    out: dict = {"optimizer": optimizer, "loss": per_output(config.loss, loss, None)}
    if any(w != 1.0 for w in config.loss_weights.values()):
        if single:
            out["loss_weights"] = [config.loss_weights[outputs[0]]]
        else:
            out["loss_weights"] = dict(config.loss_weights)
    for key in ("metrics", "weighted_metrics"):
        values = {o: ms for o, ms in getattr(config, key).items() if ms}
        settings = per_output(values, lambda ms: [metric(m) for m in ms], [])
        if settings is not None:
            out[key] = settings
    if config.steps_per_execution != 1:
        out["steps_per_execution"] = config.steps_per_execution
    return out
