"""The train block's callbacks, with Keras's rules (keras.callbacks).

A callback gets the run (loop.TrainingRun) as `run`: it reads and sets `run.lr`, sets
`run.stop`, reads `run.weights()`, sets `run.set_weights(...)`, writes files with
`run.export(path)` (the inference model) and `run.save_weights(path)`, and places them
with `run.output_path(name, who)` (inside --out, or refused). `state`, `arrays` and
`load` make a callback resumable: a checkpoint holds them.

`make_callbacks(specs)` builds them from the script's CALLBACKS literal (one dict per
callback: "name" and every keyword argument, defaults filled in by ktrans). A callback
class added later registers itself with `@register`.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from . import console
from .errors import TrainingError, WriteError
from .files import atomic_write
from .schedules import schedule_value

REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Makes a Callback class available to `make_callbacks` under its class name."""
    REGISTRY[cls.__name__] = cls
    return cls


def make_callbacks(specs: list[dict]) -> list[Callback]:
    callbacks = []
    for spec in specs:
        kwargs = {key: value for key, value in spec.items() if key != "name"}
        cls = REGISTRY.get(spec["name"])
        if cls is None:
            known = ", ".join(sorted(REGISTRY))
            raise ValueError(f"the callback {spec['name']} is not in this runtime ({known})")
        callbacks.append(cls(**kwargs))
    return callbacks


class Callback:
    """The hooks the loop calls."""

    def on_train_begin(self, run) -> None:
        pass

    def on_epoch_begin(self, run, epoch: int) -> None:
        pass

    def on_batch_end(self, run, batch: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, run, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, run) -> None:
        pass

    def state(self) -> dict:
        """JSON-able state for a checkpoint."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint."""
        return {}

    def load(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        pass

    def wants_batches(self) -> bool:
        return type(self).on_batch_end is not Callback.on_batch_end


def improved(current: float, best, mode: str, min_delta: float) -> bool:
    """Keras's test: better than `best` by more than `min_delta`."""
    if best is None:
        return True
    if mode == "min":
        return current + abs(min_delta) < best
    return current - abs(min_delta) > best


def monitored(logs: dict, monitor: str, who: str):
    """The monitored value; None (with a note) if it is not logged or not a number."""
    value = logs.get(monitor)
    if value is None:
        console.note(f"{who}: '{monitor}' is not logged (logs: {', '.join(sorted(logs))})")
    elif isinstance(value, list):
        console.note(f"{who}: '{monitor}' is a list, not one number")
        return None
    return value


@register
class EarlyStopping(Callback):
    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="min",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        self.monitor, self.min_delta, self.patience = monitor, min_delta, patience
        self.verbose, self.mode, self.baseline = verbose, mode, baseline
        self.restore, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
        self.best_weights = None

    def on_epoch_end(self, run, epoch, logs):
        current = monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore and self.best_weights is None:
            self.best_weights, self.best_epoch = run.weights(), epoch
        self.wait += 1
        if improved(current, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch = current, epoch
            if self.restore:
                self.best_weights = run.weights()
            if self.baseline is None or improved(current, self.baseline, self.mode, self.min_delta):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            run.stop = True

    def on_train_end(self, run):
        if self.stopped_epoch > 0 and self.verbose:
            console.info(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore and self.best_weights is not None:
            if self.verbose:
                best = self.best_epoch + 1
                console.info(f"Restoring model weights from the end of the best epoch: {best}.")
            run.set_weights(self.best_weights)

    def state(self):
        keys = ("wait", "stopped_epoch", "best", "best_epoch")
        return {key: getattr(self, key) for key in keys}

    def arrays(self):
        return dict(self.best_weights or {})

    def load(self, state, arrays):
        for key in ("wait", "stopped_epoch", "best", "best_epoch"):
            setattr(self, key, state[key])
        self.best_weights = dict(arrays) or None


@register
class ReduceLROnPlateau(Callback):
    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="min",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.verbose, self.mode, self.min_delta = verbose, mode, min_delta
        self.cooldown, self.min_lr = cooldown, min_lr
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def on_epoch_end(self, run, epoch, logs):
        logs["learning_rate"] = run.lr
        current = monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if improved(current, self.best, self.mode, self.min_delta):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and run.lr > np.float32(self.min_lr):
                run.lr = float(np.float32(max(run.lr * self.factor, self.min_lr)))
                if self.verbose:
                    message = f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate"
                    console.info(f"{message} to {run.lr}.")
                self.cooldown_counter, self.wait = self.cooldown, 0

    def state(self):
        return {"best": self.best, "cooldown": self.cooldown_counter, "wait": self.wait}

    def load(self, state, arrays):
        self.best, self.cooldown_counter = state["best"], state["cooldown"]
        self.wait = state["wait"]


@register
class ModelCheckpoint(Callback):
    """Keras writes .keras or .weights.h5 files; here a whole model is the inference
    .onnx with the current weights, and weights alone a .weights.npz (SUFFIXES)."""

    SUFFIXES = [(".weights.h5", ".weights.npz"), (".keras", ".onnx"), (".h5", ".onnx")]

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="min",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        for keras_suffix, suffix in self.SUFFIXES:
            if filepath.endswith(keras_suffix):
                filepath = filepath[: -len(keras_suffix)] + suffix
                break
        self.filepath, self.monitor, self.verbose = filepath, monitor, verbose
        self.save_best_only, self.weights_only = save_best_only, save_weights_only
        self.mode, self.save_freq, self.best = mode, save_freq, initial_value_threshold
        self.epoch, self.batches = 0, 0

    def on_train_begin(self, run):
        run.output_path(self.filepath, "ModelCheckpoint")  # refused before training starts

    def on_epoch_begin(self, run, epoch):
        self.epoch = epoch

    def on_batch_end(self, run, batch, logs):
        if self.save_freq == "epoch":
            return
        self.batches += 1
        if self.batches >= self.save_freq:
            self.batches = 0
            self.save(run, self.epoch, batch, logs)

    def wants_batches(self) -> bool:
        return self.save_freq != "epoch"

    def on_epoch_end(self, run, epoch, logs):
        if self.save_freq == "epoch":
            self.save(run, epoch, None, logs)

    def save(self, run, epoch, batch, logs):
        fields = {"epoch": epoch + 1, **logs}
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            name = self.filepath.format(**fields)
        except KeyError as e:
            field, logged = e.args[0], ", ".join(sorted(fields))
            raise TrainingError(
                f"ModelCheckpoint: filepath '{self.filepath}' uses {{{field}}}, which "
                f"this run does not log (it logs {logged})"
            ) from None
        except (ValueError, IndexError) as e:
            raise TrainingError(f"ModelCheckpoint: filepath '{self.filepath}': {e}") from None
        path = run.output_path(name, "ModelCheckpoint")
        if self.save_best_only:
            current = monitored(logs, self.monitor, "ModelCheckpoint")
            if current is not None:
                if not improved(current, self.best, self.mode, 0):
                    if self.verbose:
                        message = f"Epoch {epoch + 1}: {self.monitor} did not improve"
                        console.info(f"{message} from {self.best:.5f}")
                    return
                self.best = current
        if self.verbose:
            console.info(f"Epoch {epoch + 1}: saving model to {path}")
        if self.weights_only:
            run.save_weights(path)
        else:
            run.export(path)

    def state(self):
        return {"best": self.best, "batches": self.batches}

    def load(self, state, arrays):
        self.best, self.batches = state["best"], state["batches"]


@register
class CSVLogger(Callback):
    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = filename, separator, append
        self.keys, self.started = None, False

    def on_train_begin(self, run):
        run.output_path(self.filename, "CSVLogger")  # refused before training starts

    def on_epoch_end(self, run, epoch, logs):
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        path = run.output_path(self.filename, "CSVLogger")
        fresh = not self.started and not self.append
        try:
            before = b"" if fresh or not path.is_file() else path.read_bytes()
        except OSError as e:
            raise WriteError(path, e.strerror or str(e)) from None
        text = io.StringIO()
        writer = csv.writer(text, delimiter=self.separator, lineterminator="\r\n")
        if not before:
            writer.writerow(["epoch", *self.keys])
        writer.writerow([epoch, *(logs.get(key, "NA") for key in self.keys)])
        atomic_write(path, lambda f: f.write(before + text.getvalue().encode()))
        self.started = True

    def state(self):
        return {"keys": self.keys, "started": self.started}

    def load(self, state, arrays):
        self.keys, self.started = state["keys"], state["started"]


@register
class TerminateOnNaN(Callback):
    """Nothing to do: the loop always stops on a NaN or infinite loss, keeping the last
    good state (Keras's callback stops after the batch that produced it)."""

    def __init__(self, raise_error=False):
        self.raise_error = raise_error


@register
class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch, a schedule of the epoch."""

    def __init__(self, schedule, verbose=0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, run, epoch):
        run.lr = schedule_value(self.schedule, epoch)
        if self.verbose:
            message = f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate"
            console.info(f"{message} to {run.lr}.")

    def on_epoch_end(self, run, epoch, logs):
        logs["learning_rate"] = run.lr
