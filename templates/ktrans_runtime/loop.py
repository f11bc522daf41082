"""The loop's bookkeeping, engine-independent: `TrainingRun` is where a run stands
(epoch, batch: steps done in that epoch, step: steps done in all, the learning rate, the
history, whether to stop) and what it writes (checkpoint, history, results, the trained
model).
A model script's loop calls it at each turn (see the package docstring for the loop);
callbacks get it as `run`.

Settings (seed, batch size, validation split, epochs) come from the flags, else from
the checkpoint of a resumed run (which keeps its seed, batch size and split), else from
the train block. A resumed run restores everything a checkpoint holds, so it ends with
the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from . import checkpoint, console
from .callbacks import make_callbacks
from .data import feeds_from, open_data, split_validation, steps_per_epoch
from .errors import EXIT_ERROR, EXIT_OK, TrainingError
from .files import inside, remove_stale_temporaries, save_npz
from .history import write_history, write_results
from .metrics import Averages, evaluate
from .progress import Progress, format_logs
from .schedules import is_schedule, schedule_value

SETTINGS = ("seed", "batch_size", "validation_split", "epochs")


class TrainingRun:
    """One run of `engine` (the engine interface of the package docstring) for the
    script's `compiled` settings: {"model", "train_block", "seed", "fit", "losses",
    "metric_plan", "learning_rate", "callbacks"} (the script's literals), and optionally
    "trained": the trained model's file name (default <model>.trained<suffix>)."""

    def __init__(self, args, engine, interrupt, compiled: dict) -> None:
        self.engine, self.interrupt, self.compiled = engine, interrupt, compiled
        self.model, self.fit = compiled["model"], compiled["fit"]
        self.out = Path(args.out).resolve()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrainingError(f"--out: cannot create {self.out}: {e.strerror}") from None
        self.checkpoint = self.out / "checkpoint.npz"
        trained = compiled.get("trained") or f"{self.model}.trained{engine.export_suffix}"
        self.trained = self.out / trained
        self.fingerprint = engine.fingerprint()
        resumed = None
        if args.resume:
            resumed = checkpoint.load(self.checkpoint, self.model, engine.shapes)
            if resumed[0]["fingerprint"] != self.fingerprint:
                raise TrainingError(
                    "--resume: the training graph changed since the checkpoint was "
                    "saved; start over without --resume"
                )
        elif self.checkpoint.exists():
            console.note(f"starting over: replacing {self.checkpoint}")
        self.settings = self._settings(args, resumed[0] if resumed else None)
        self.seed, self.epochs = self.settings["seed"], self.settings["epochs"]
        self.batch_size = self.settings["batch_size"]
        self.val_batch_size = self.fit["validation_batch_size"] or self.batch_size
        self.epoch, self.batch, self.step = self.fit["initial_epoch"], 0, 0
        rate = compiled["learning_rate"]
        self.lr = 0.0 if is_schedule(rate) else float(rate)
        self.last_lr = self.lr
        self.history: list[dict] = []
        self.stop = self.finished = self.saved = False
        self.averages = Averages(compiled["losses"], compiled["metric_plan"])
        self.eval_averages = Averages(compiled["losses"], compiled["metric_plan"])
        self.callbacks = make_callbacks(compiled["callbacks"])
        self.per_batch = [c for c in self.callbacks if c.wants_batches()]
        self.end_hooks: list[Callable[[TrainingRun], None]] = []
        verbose = self.fit["verbose"] if args.verbose is None else args.verbose
        self.progress = Progress(verbose)
        self.steps_here, self.step_seconds = 0, 0.0
        self._resumed = resumed
        self.data_path = args.data
        self.steps = 0
        self._step_started = 0.0

    def _settings(self, args, meta) -> dict:
        defaults = {
            "seed": self.compiled["seed"],
            "batch_size": self.fit["batch_size"],
            "validation_split": self.fit["validation_split"],
            "epochs": self.fit["epochs"],
        }
        settings = {**defaults, **(meta["settings"] if meta else {})}
        for key in SETTINGS:
            given = getattr(args, key)
            if given is None:
                continue
            if meta and key != "epochs" and given != settings[key]:
                raise TrainingError(
                    f"--resume: --{key.replace('_', '-')} {given} differs from the "
                    f"checkpoint's {settings[key]}; a resumed run keeps it"
                )
            settings[key] = given
        return settings

    # ------------------------------------------------------------ start

    def open_data(self, feeds: dict, settings: dict | None = None):
        """(train, val, test) datasets of --data for the script's FEEDS literal (and the
        train block's data { } section, `settings`), with the validation split made; a
        resumed run must see the same numbers of rows."""
        self.interrupt.at_startup()
        options = {"settings": settings or {}, "seed": self.seed, "out": self.out}
        data = open_data(self.data_path, feeds_from(feeds), options)
        split = self.settings["validation_split"]
        train, val = split_validation(data["train"], data["val"], split)
        sizes = [train.size, val.size if val is not None else 0]
        if self._resumed and self._resumed[0]["settings"].get("sizes") != sizes:
            had = self._resumed[0]["settings"].get("sizes")
            raise TrainingError(
                f"--resume: the data has {sizes[0]} training and {sizes[1]} validation "
                f"rows; the checkpoint's run had {had}"
            )
        self.settings["sizes"] = sizes
        self.steps = steps_per_epoch(train.size, self.batch_size, self.fit["steps_per_epoch"])
        return train, val, data["test"]

    def begin(self) -> None:
        """Restores a resumed run, removes stale temporaries, checks the callbacks'
        paths, and from here on a signal stops the loop after its step."""
        if self._resumed:
            self._restore(*self._resumed)
        removed = remove_stale_temporaries(self._written())
        if removed:
            count = len(removed)
            console.note(f"removed {count} temporary file(s) of an earlier, killed run")
        for callback in self.callbacks:
            callback.on_train_begin(self)
        self.interrupt.defer()

    def _written(self) -> list[Path]:
        names = ["checkpoint.npz", "history.json", "history.csv", "results.json"]
        paths = [self.out / name for name in names] + [self.trained]
        for callback in self.callbacks:
            name = getattr(callback, "filename", None) or getattr(callback, "filepath", None)
            if name and "{" not in name:
                paths.append(self.out / name)
        return paths

    def _restore(self, meta: dict, state: dict, extra: dict) -> None:
        try:
            self.engine.load(state)
            self.epoch, self.batch, self.step = (
                meta["epoch"],
                meta["batch"],
                meta["step"],
            )
            self.lr, self.stop, self.history = meta["lr"], meta["stop"], meta["history"]
            self.last_lr = meta.get("last_lr", self.lr)
            self.averages.load(meta["averages"])
            if len(meta["callbacks"]) != len(self.callbacks):
                raise ValueError("callbacks")
            for i, (callback, saved) in enumerate(zip(self.callbacks, meta["callbacks"])):
                prefix = f"callback{i}/"
                arrays = {n[len(prefix) :]: a for n, a in extra.items() if n.startswith(prefix)}
                callback.load(saved, arrays)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise checkpoint.DamagedCheckpoint(self.checkpoint, f"its state is odd: {e}") from None
        self.saved = True
        where = f"epoch {self.epoch + 1}, batch {self.batch} (step {self.step})"
        console.info(f"resuming at {where}")

    # ------------------------------------------------------------ the loop's turns

    def begin_epoch(self) -> None:
        if self.batch == 0:
            self.averages.reset()
        for callback in self.callbacks:
            callback.on_epoch_begin(self, self.epoch)
        if self.batch == 0:
            self.last_lr = self.learning_rate()
        self.progress.start(self.epoch, self.epochs, self.steps, self.batch)

    def learning_rate(self) -> float:
        """The learning rate of the next step: a schedule of the step, or `lr` (which
        ReduceLROnPlateau and LearningRateScheduler change)."""
        rate = self.compiled["learning_rate"]
        return schedule_value(rate, self.step) if is_schedule(rate) else self.lr

    def begin_step(self) -> float:
        """The next step's learning rate; starts the clock of the step (`end_batch`
        stops it: results.json reports steps per second)."""
        self.last_lr = self.learning_rate()
        self._step_started = time.perf_counter()
        return self.last_lr

    def end_batch(self, values: dict, rows: int) -> None:
        """After a committed step of `rows` rows with the engine's outputs `values`."""
        self.step_seconds += time.perf_counter() - self._step_started
        batch = self.batch
        self.step, self.batch, self.steps_here = (
            self.step + 1,
            batch + 1,
            self.steps_here + 1,
        )
        self.averages.update(values, rows)
        self.progress.update(self.batch, self.averages.result)
        if self.per_batch:
            logs = self.averages.result()
            for callback in self.per_batch:
                callback.on_batch_end(self, batch, logs)
        self.interrupt.after_step(self.steps_here)

    def validation_due(self) -> bool:
        return (self.epoch + 1) % self.fit["validation_freq"] == 0

    def evaluate(self, data) -> dict | None:
        """Loss and metrics over `data` in inference mode (None if interrupted)."""
        steps = self.fit["validation_steps"]
        return evaluate(
            self.engine,
            data,
            self.val_batch_size,
            self.eval_averages,
            steps,
            self.interrupt,
        )

    def end_epoch(self, logs: dict) -> None:
        """Progress, history, callbacks, then the checkpoint and history files."""
        self.progress.end(logs)
        self.history.append({"epoch": self.epoch, **logs, "learning_rate": self.last_lr})
        for callback in self.callbacks:
            callback.on_epoch_end(self, self.epoch, logs)
        self.epoch, self.batch = self.epoch + 1, 0
        self.save()

    # ------------------------------------------------------------ for callbacks

    def weights(self) -> dict:
        """A host copy of the parameters and buffers (not the optimizer slots)."""
        return self.engine.weights()

    def set_weights(self, weights: dict) -> None:
        self.engine.load(weights)

    def export(self, path: Path) -> None:
        """Writes the inference model with the current weights."""
        self.engine.export(path, self.engine.weights())

    def save_weights(self, path: Path) -> None:
        save_npz(path, self.engine.weights())

    def output_path(self, name: str, who: str) -> Path:
        """`name` inside --out (files.inside)."""
        return inside(self.out, name, who)

    # ------------------------------------------------------------ writing and ending

    def save(self) -> None:
        """The checkpoint (state, position, callbacks) and the history files."""
        extra = {}
        for i, callback in enumerate(self.callbacks):
            extra.update({f"callback{i}/{n}": a for n, a in callback.arrays().items()})
        meta = {
            "model": self.model,
            "train_block": self.compiled["train_block"],
            "engine": self.engine.name,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "lr": self.lr,
            "last_lr": self.last_lr,
            "stop": self.stop,
            "finished": self.finished,
            "history": self.history,
            "averages": self.averages.state(),
            "callbacks": [callback.state() for callback in self.callbacks],
        }
        checkpoint.save(self.checkpoint, meta, self.engine.state(), extra)
        self.saved = True
        write_history(self.out, self.history)

    def interrupted(self) -> int:
        """Saves a checkpoint after Ctrl-C or SIGTERM; returns 128 + the signal."""
        self.save()
        where = f"epoch {self.epoch + 1}, batch {self.batch}/{self.steps}"
        console.info(
            f"interrupted at {where}: checkpoint saved to {self.checkpoint}; continue with --resume"
        )
        return self.interrupt.exit_code

    def stop_on_nan(self, loss: float) -> int:
        """A NaN or infinite loss: nothing is committed, training stops (exit 1)."""
        write_history(self.out, self.history)
        if self.progress.verbose == 1:
            console.newline()
        batch = f"batch {self.batch + 1} of {self.steps}"
        where = f"epoch {self.epoch + 1}, step {self.step + 1} ({batch})"
        if self.saved:
            last = f"the last checkpoint is {self.checkpoint}"
        else:
            last = "no checkpoint was saved (none is written before the first epoch ends)"
        console.error(f"the loss is {loss} at {where}; training stopped; {last}")
        return EXIT_ERROR

    def on_end(self, hook: Callable[[TrainingRun], None]) -> None:
        """Calls `hook(run)` when training has ended, after the trained model is written
        (writers of other formats and reports plug in here)."""
        self.end_hooks.append(hook)

    def finish(self, test=None) -> int:
        """Callbacks' end (EarlyStopping restores the best weights), the final
        checkpoint, the trained inference model, the test data's logs, results.json and
        the end hooks; returns 0."""
        for callback in self.callbacks:
            callback.on_train_end(self)
        self.finished = True
        self.save()
        self.export(self.trained)
        final = {k: v for k, v in (self.history or [{}])[-1].items() if k != "epoch"}
        test_logs = None
        if test is not None:
            test_logs = evaluate(self.engine, test, self.val_batch_size, self.eval_averages)
        rate = self.steps_here / self.step_seconds if self.step_seconds else None
        self.results = {
            "model": self.model,
            "train_block": self.compiled["train_block"],
            "epochs": self.epoch,
            "steps": self.step,
            "stopped_early": self.stop,
            "final": final,
            "test": test_logs,
            "test_rows": test.size if test is not None else 0,
            "steps_this_run": self.steps_here,
            "step_seconds": self.step_seconds,
            "steps_per_second": rate,
            **self.engine.describe(),
            "trained_model": self.trained.name,
        }
        write_results(self.out, self.results)
        for hook in self.end_hooks:
            hook(self)
        speed = f", {rate:.1f} steps/s" if rate else ""
        console.result(f"{self.model}: {self.epoch} epochs, {self.step} steps{speed}")
        final.pop("learning_rate", None)
        if final:
            console.result(f"final: {format_logs(final)[3:]}")
        if test_logs is not None:
            console.result(f"test: {format_logs(test_logs)[3:]} ({test.size} rows)")
        console.result(f"wrote {self.trained}")
        return EXIT_OK
