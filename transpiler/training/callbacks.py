"""Callbacks (keras.callbacks) with Keras 3 defaults, and the names they may monitor.

A `monitor` must name something `fit` logs: `loss`, each metric's log name, per-output
`<output>_loss` / `<output>_<metric>` for a model with several outputs, each with a
`val_` prefix for validation. `val_*` is always accepted: validation data may come from
`validation_split` or be given at run time. With `mode=auto` Keras 3 infers the direction
only for `loss` and for the metrics of a single-output model; elsewhere it fails at run
time, so ktrans asks for `mode=min` or `mode=max` up front."""

from __future__ import annotations

from string import Formatter

from transpiler.errors import suggest
from transpiler.layers.args import (
    ArgError,
    Spec,
    boolean,
    choice,
    describe,
    float_in,
    is_int,
    non_negative_float,
    non_negative_int,
    number,
    optional,
    string,
)
from transpiler.layers.base import Arg
from transpiler.training.config import (
    CallbackSpec,
    Catalogue,
    Entry,
    OptimizerSpec,
    ScheduleSpec,
    TrainError,
    written_at,
)
from transpiler.training.output_paths import output_path, separator
from transpiler.training.schedules import is_schedule, schedule


def _pattern(value) -> str:
    return output_path(value, pattern=True)


def _schedule(value) -> ScheduleSpec:
    if not is_schedule(value) and not isinstance(value, Spec):
        raise ArgError(
            f"expected a schedule, got {describe(value)}",
            "for example schedule=ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.5), "
            "stepped once per epoch",
        )
    return schedule(value)


def _save_freq(value):
    if value == "epoch" or getattr(value, "name", None) == "epoch":
        return "epoch"
    if is_int(value) and value > 0:
        return value
    raise ArgError(f'expected "epoch" or a positive number of batches, got {describe(value)}')


#: what ModelCheckpoint writes for each file extension (`.onnx` is ktrans's own)
CHECKPOINT_FORMATS = {
    ".weights.h5": "the weights as a Keras 3 .weights.h5 (model.load_weights reads it)",
    ".keras": "a Keras 3 archive (keras.saving.load_model opens it)",
    ".onnx": "the ONNX inference model with the current weights",
}


def _checkpoint(kw: dict) -> None:
    """Keras 3's rules (callbacks/model_checkpoint.py): weights alone go to `.weights.h5`,
    whole models to `.keras`; ktrans adds `.onnx`, a whole model too. Keras 3 also takes
    `.h5` for a whole model (its legacy HDF5 format), which ktrans does not write."""
    path = kw["filepath"]
    if kw["save_weights_only"] and not path.endswith(".weights.h5"):
        raise TrainError(
            f'with save_weights_only=true filepath must end in ".weights.h5"; got "{path}"',
            'Keras saves weights alone as ".weights.h5"; for a whole model drop '
            'save_weights_only and write ".keras" or ".onnx"',
            path=("filepath",),
        )
    if kw["save_weights_only"]:
        return
    if path.endswith(".weights.h5"):
        raise TrainError(
            f'filepath "{path}" needs save_weights_only=true',
            "without it Keras 3 writes its legacy whole-model .h5 format under that name, "
            "which ktrans does not write",
            path=("filepath",),
        )
    if path.endswith(".h5"):
        raise TrainError(
            f'filepath "{path}": ktrans does not write the legacy Keras ".h5" model format',
            f'write "{path[:-3]}.keras" (Keras 3\'s format), or ".weights.h5" with '
            "save_weights_only=true",
            path=("filepath",),
        )
    if not path.endswith((".keras", ".onnx")):
        raise TrainError(
            f'filepath must end in ".keras" (a Keras 3 archive) or ".onnx" (the ONNX '
            f'inference model); got "{path}"',
            f'write filepath="{path}.keras", or save_weights_only=true with ".weights.h5"',
            path=("filepath",),
        )


MONITOR = Arg("monitor", string, "val_loss")
MODE = Arg("mode", choice("auto", "min", "max"), "auto")


def _verbose(value) -> int:
    if isinstance(value, bool) or value not in (0, 1):
        raise ArgError(f"expected 0 or 1, got {describe(value)}")
    return value


VERBOSE = Arg("verbose", _verbose, 0)


CALLBACKS = Catalogue(
    "callback",
    [
        Entry(
            "EarlyStopping",
            "EarlyStopping",
            (
                MONITOR,
                Arg("min_delta", number, 0),
                Arg("patience", non_negative_int, 0),
                VERBOSE,
                MODE,
                Arg("baseline", optional(number), None),
                Arg("restore_best_weights", boolean, False),
                Arg("start_from_epoch", non_negative_int, 0),
            ),
        ),
        Entry(
            "ReduceLROnPlateau",
            "ReduceLROnPlateau",
            (
                MONITOR,
                Arg("factor", float_in(0, 1, lo_open=True, hi_open=True), 0.1),
                Arg("patience", non_negative_int, 10),
                VERBOSE,
                MODE,
                Arg("min_delta", number, 1e-4),
                Arg("cooldown", non_negative_int, 0),
                Arg("min_lr", non_negative_float, 0.0),
            ),
        ),
        Entry(
            "ModelCheckpoint",
            "ModelCheckpoint",
            (
                Arg("filepath", _pattern),
                MONITOR,
                VERBOSE,
                Arg("save_best_only", boolean, False),
                Arg("save_weights_only", boolean, False),
                MODE,
                Arg("save_freq", _save_freq, "epoch"),
                Arg("initial_value_threshold", optional(number), None),
            ),
            check=_checkpoint,
        ),
        Entry(
            "CSVLogger",
            "CSVLogger",
            (
                Arg("filename", output_path),
                Arg("separator", separator, ","),
                Arg("append", boolean, False),
            ),
        ),
        Entry("TerminateOnNaN", "TerminateOnNaN", (Arg("raise_error", boolean, False),)),
        Entry(
            "LearningRateScheduler", "LearningRateScheduler", (Arg("schedule", _schedule), VERBOSE)
        ),
    ],
)

LR_SETTERS = ("ReduceLROnPlateau", "LearningRateScheduler")


def metric_keys(outputs: list[str], metrics: dict, weighted: dict):
    """Yields (output, MetricSpec, key) for every metric, in Keras 3's order (`metrics`
    then `weighted_metrics`, output by output), named as Keras names them: prefixed with
    the output on multi-output models, `weighted_` for a weighted repeat, `_1`, `_2`...
    for other repeats."""
    many = len(outputs) > 1
    counters: dict[str, int] = {}
    for group, weighted_set in ((metrics, False), (weighted, True)):
        for o in outputs:
            for m in group.get(o, []):
                prefix = f"{o}_" if many else ""
                name = prefix + m.log_name
                if name in counters and weighted_set:
                    name = f"{prefix}weighted_{m.log_name}"
                if name not in counters:
                    counters[name] = 1
                else:
                    index = counters[name]
                    counters[name] += 1
                    name = f"{name}_{index}"
                yield o, m, name


def log_keys(
    outputs: list[str], loss: dict, metrics: dict, weighted: dict
) -> dict[str, tuple[str, bool]]:
    """What `fit` logs (without `val_`), as Keras 3 names it: key -> (direction "min" or
    "max", whether mode=auto can infer it)."""
    many = len(outputs) > 1
    keys: dict[str, tuple[str, bool]] = {"loss": ("min", True)}
    if many and len(loss) > 1:
        keys.update({f"{o}_loss": ("min", False) for o in outputs if o in loss})
    for _, m, name in metric_keys(outputs, metrics, weighted):
        direction = "max" if m.direction == "up" else "min"
        keys[name] = (direction, not many and name == m.log_name)
    return keys


def _check_monitor(r, value, keys: dict) -> None:
    monitor = r.kwargs.get("monitor")
    if monitor is None:
        return
    at = written_at(r.entry, value, "monitor")
    base = monitor[4:] if monitor.startswith("val_") else monitor
    if base not in keys:
        known = sorted(keys) + sorted(f"val_{k}" for k in keys)
        raise TrainError(
            f"{r.written}: monitor '{monitor}' is not logged by this train block",
            suggest(monitor, known) or f"fit logs: {', '.join(known)}",
            path=at,
        )
    direction, auto = keys[base]
    if r.kwargs["mode"] == "auto" and not auto:
        raise TrainError(
            f"{r.written}: Keras cannot tell whether '{monitor}' should go up or down (mode=auto)",
            f"add mode={direction}",
            path=at,
        )


def _check_filepath(r, value, keys: dict) -> None:
    path = r.kwargs.get("filepath")
    if path is None:
        return
    allowed = {"epoch", "batch", *keys, *(f"val_{k}" for k in keys)}
    try:
        fields = [f for _, f, _, _ in Formatter().parse(path) if f is not None]
    except ValueError as e:
        raise TrainError(
            f"{r.written}: filepath is not a valid pattern: {e}",
            path=written_at(r.entry, value, "filepath"),
        ) from None
    for f in fields:
        key = f.split(".")[0].split("[")[0]
        if key not in allowed:
            raise TrainError(
                f"{r.written}: filepath uses '{{{f}}}', which is not logged",
                suggest(key, allowed) or "it may use {epoch}, {batch} and logged values",
                path=written_at(r.entry, value, "filepath"),
            )


def callback(value, keys: dict | None, optimizer: OptimizerSpec | None) -> CallbackSpec:
    """One callback, checked against what the train block logs and its optimizer."""
    r = CALLBACKS.resolve(value)
    if keys is not None:  # None: the losses or metrics failed, so the log is unknown
        _check_monitor(r, value, keys)
        _check_filepath(r, value, keys)
    lr = optimizer.kwargs.get("learning_rate") if optimizer is not None else None
    if r.entry.name in LR_SETTERS and isinstance(lr, ScheduleSpec):
        raise TrainError(
            f"{r.written} sets the learning rate, but the optimizer's learning_rate is a "
            "schedule, which Keras cannot change",
            "give the optimizer a number as learning_rate, or drop the callback",
        )
    return CallbackSpec(r.entry.name, r.kwargs)


def resolve_callbacks(
    value, keys: dict | None, optimizer: OptimizerSpec | None, problems: list[TrainError]
) -> list[CallbackSpec]:
    items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
    out = []
    for i, v in items:
        if v is None:
            continue
        try:
            out.append(callback(v, keys, optimizer))
        except TrainError as e:
            problems.append(e if i is None else e.within(i))
    return out
