"""A Keras compile config -> a .kdl train block.

Keras 3 saves `model.compile(...)` as `compile_config` (optimizer, loss, metrics,
loss_weights, weighted_metrics, steps_per_execution...); Keras 2 whole-model .h5 files
as `training_config` (with `optimizer_config`). Optimizers, losses, metrics and
learning-rate schedules are looked up in ktrans's training catalogues and written with
their non-default arguments; the train block is then checked with the model like any
other. Settings that change nothing (run_eagerly, jit_compile) are left out; others
that .kdl cannot express are an error naming the key.
"""

from __future__ import annotations

from transpiler.importer.errors import ImportFailure
from transpiler.importer.values import is_serialized, kdl_text, plain
from transpiler.layers.args import Spec, Symbol

#: compile settings that do not change what is computed
_NEUTRAL = {
    "run_eagerly": (False, None),
    "jit_compile": (False, None, "auto", True),
    "auto_scale_loss": (True, None),
    "sample_weight_mode": (None,),
}
#: optimizer config keys that mean nothing for ktrans at these values
_OPTIMIZER_NEUTRAL = {
    "is_legacy_optimizer": (False,),
    "jit_compile": (True, False),
    "decay": (0.0,),
}


def _catalogue_call(catalogue, value, kind: str, skip=("name", "reduction", "dtype")):
    """A serialized loss / metric / optimizer / schedule (or its name) -> a Symbol or a
    Spec with the non-default arguments."""
    from transpiler.training.config import defaults

    if isinstance(value, str):  # a name; the train block's check says if it is known
        return Symbol(value)
    if not is_serialized(value):
        raise ImportFailure(f"cannot read the {kind} {str(value)[:60]}")
    cls = value["class_name"]
    config = value.get("config") or {}
    entry = catalogue.find(cls)
    if entry is None:
        raise ImportFailure(f"the {kind} {cls} is not one ktrans knows")
    base = defaults(entry)
    names = {a.name: a for a in entry.args}
    kwargs = []
    for key, v in config.items():
        if key in skip:
            continue
        if kind == "optimizer" and v in _OPTIMIZER_NEUTRAL.get(key, ()):
            continue
        if key not in names:
            if v is None:
                continue
            raise ImportFailure(
                f"the {kind} {cls} has the setting {key}={str(v)[:40]}, which .kdl lacks",
                key=key,
            )
        if key == "name" and v in (entry.name, entry.keras_class, _snake(entry.keras_class)):
            continue  # a metric's default name
        if key == "learning_rate" and is_serialized(v):
            from transpiler.training.schedules import SCHEDULES

            kwargs.append((key, _catalogue_call(SCHEDULES, v, "schedule")))
            continue
        v = plain(v)
        if key == "learning_rate" and isinstance(v, float):
            v = _shortest_float32(v)
        try:
            if key in base and names[key].convert(v) == base[key]:
                continue
        except Exception:  # the catalogue's check reports it when the block is checked
            pass
        kwargs.append((key, Symbol(v) if isinstance(v, str) else v))
    name = entry.keras_class if kind in ("optimizer", "schedule") else entry.name
    return Spec(name, (), tuple(kwargs)) if kwargs else Symbol(name)


def _snake(name: str) -> str:
    from transpiler.layers.base import snake_case

    return snake_case(name)


def _shortest_float32(x: float) -> float:
    """Keras keeps the learning rate in a float32 variable and saves 0.0010000000474974513
    for 0.001: the shortest decimal of that float32, where it is one."""
    import numpy as np

    short = float(str(np.float32(x)))
    return short if float(np.float32(short)) == x else x


def _per_output(value, outputs: list[str], make):
    """One value for every output, a list in output order, or a dict by output name."""
    if isinstance(value, dict) and not is_serialized(value):
        return {str(k): make(v) for k, v in value.items()}
    if isinstance(value, list) and len(outputs) > 1 and len(value) == len(outputs):
        return dict(zip(outputs, (make(v) for v in value)))
    return make(value)


def train_block(config: dict, model: str, outputs: list[str], bare_ok) -> list[str]:
    """The lines of `train <model> { ... }` for a compile config."""
    from transpiler.training.losses import LOSSES
    from transpiler.training.metrics import METRICS
    from transpiler.training.optimizers import OPTIMIZERS

    items: list[tuple[str, object]] = []
    optimizer = config.get("optimizer", config.get("optimizer_config"))
    if optimizer is not None:
        items.append(("optimizer", _catalogue_call(OPTIMIZERS, optimizer, "optimizer")))
    if config.get("loss") is not None:
        items.append(("loss", _per_output(config["loss"], outputs, lambda v: _loss(LOSSES, v))))
    if config.get("loss_weights") is not None:
        items.append(("loss_weights", _per_output(config["loss_weights"], outputs, plain)))
    for key in ("metrics", "weighted_metrics"):
        value = config.get(key)
        if value:
            items.append((key, _metrics(METRICS, value, outputs)))
    steps = config.get("steps_per_execution", 1)
    if steps not in (1, None):
        items.append(("steps_per_execution", steps))
    known = {"optimizer", "optimizer_config", "loss", "loss_weights", "metrics"}
    known |= {"weighted_metrics", "steps_per_execution"}
    for key, value in config.items():
        if key in known:
            continue
        if key in _NEUTRAL and plain(value) in _NEUTRAL[key]:
            continue
        raise ImportFailure(
            f"the compile setting {key}={str(value)[:40]} has no .kdl train-block key",
            key=key,
        )
    if not items:
        return []
    width = max(len(k) for k, _ in items)
    lines = [f"train {model} {{"]
    for key, value in items:
        lines.append(f"    {key.ljust(width)} = {_text(value, bare_ok)}")
    lines.append("}")
    return lines


def _loss(catalogue, value):
    if value is None:
        return None
    return _catalogue_call(catalogue, value, "loss")


def _metrics(catalogue, value, outputs):
    def one(v):
        return _catalogue_call(catalogue, v, "metric", skip=("dtype",))

    def many(v):
        if isinstance(v, list):
            return [one(x) for x in v if x is not None]
        return [one(v)]

    if isinstance(value, dict) and not is_serialized(value):
        return {str(k): many(v) for k, v in value.items()}
    if isinstance(value, list) and len(outputs) > 1 and all(isinstance(v, list) for v in value):
        return dict(zip(outputs, (many(v) for v in value)))
    return many(value)


def _text(value, bare_ok) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_text(v, bare_ok)}" for k, v in value.items())
        return f"{{ {inner} }}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v, bare_ok) for v in value) + "]"
    return kdl_text(value, bare_ok=bare_ok)
