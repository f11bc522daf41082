"""The loop's bookkeeping, engine-independent: `TrainingRun` is where a run stands
(epoch, batch: steps done in that epoch, step: steps done in all, the learning rate, the
history, whether to stop) and what it writes (checkpoint, history, results, the trained
model).
A model script's loop calls it at each turn (see the package docstring for the loop);
callbacks get it as `run`. When training has ended it writes the trained model (with the
training data's class names in its metadata), results.json, then calls its end hooks:
by default the Keras files and the report (run_end.py), then any added with `on_end`.

Settings (seed, batch size, validation split, epochs) come from the flags, else from
the checkpoint of a resumed run (which keeps its seed, batch size and split, an image
folder's split among them, and its data flags), else from the train block. A resumed
run restores everything a checkpoint holds, so it ends with the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import checkpoint, console, run_end
from .callbacks import make_callbacks
from .cli import data_flags
from .data import batch_rows, feeds_from, open_data, rows_in, split_validation, steps_per_epoch
from .errors import EXIT_ERROR, EXIT_OK, TrainingError
from .files import inside, remove_stale_temporaries
from .history import write_history, write_results
from .metrics import Averages, evaluate
from .prefetch import Prefetcher
from .progress import Progress, format_logs
from .schedules import is_schedule, schedule_value

SETTINGS = ("seed", "batch_size", "validation_split", "epochs")


class TrainingRun:
    """One run of `engine` (the engine interface of the package docstring) for the
    script's `compiled` settings: {"model", "train_block", "seed", "fit", "losses",
    "metric_plan", "learning_rate", "callbacks"} (the script's literals), and optionally
    "trained": the trained model's file name (default <model>.trained<suffix>), "keras":
    the path of the bundle's Keras export description (<Model>.keras.json)."""

    def __init__(self, args, engine, interrupt, compiled: dict) -> None:
        self.started = time.perf_counter()
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
        self.stem = self.trained.name.split(".")[0]  # names the run's other model files
        self.class_names: dict[str, list[str]] = {}  # {output: names}, from the data
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
        self.end_hooks: list[Callable[[TrainingRun], None]] = list(run_end.DEFAULT_HOOKS)
        verbose = self.fit["verbose"] if args.verbose is None else args.verbose
        self.progress = Progress(verbose)
        self.steps_here, self.step_seconds = 0, 0.0
        self._resumed = resumed
        # the run's validation split was chosen (the flag, or the resumed run's): it
        # splits an image folder over its data section's own (sources.with_run_split)
        self._split_given = args.validation_split is not None or resumed is not None
        self.data_path = args.data
        # --image-size, --interpolation, --columns, ...: over DATA; the checkpoint keeps them
        self.data_flags = self._data_flags(args, resumed[0] if resumed else None)
        self.settings["data_flags"] = self.data_flags
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

    @staticmethod
    def _data_flags(args, meta) -> dict:
        """The data flags given ({data section key: value}); a resumed run keeps its
        run's (a checkpoint written before they were kept has none to keep), and one
        given again must say the same."""
        given = {k: v for k, v in data_flags(args).items() if v is not None}
        had = meta["settings"].get("data_flags") if meta else None
        if had is None:
            return given
        for key, value in given.items():
            if had.get(key) != value:
                before = had.get(key, "not given")
                raise TrainingError(
                    f"--resume: --{key.replace('_', '-')} {value} differs from the "
                    f"checkpoint's run ({before}); a resumed run keeps its data flags"
                )
        return dict(had)

    # ------------------------------------------------------------ start

    def open_data(self, feeds: dict, settings: dict | None = None):
        """(train, val, test) datasets of --data for the script's FEEDS literal (and the
        train block's data { } section, `settings`, with the command line's data flags
        over it), with the validation split made: the last rows of arrays, or an image
        folder's files as Keras splits them (the split it used is the run's, which the
        checkpoint keeps); a resumed run must see the same numbers of rows."""
        from .sources import apply_flags

        self.interrupt.at_startup()
        settings = apply_flags(settings or {}, self.data_flags)
        split = self.settings["validation_split"]
        options = {"settings": settings, "seed": self.seed, "out": self.out}
        options["run_split"] = (split, self._split_given)
        data = open_data(self.data_path, feeds_from(feeds), options)
        self.class_names = data.get("class_names") or {}
        if "validation_split" in data:  # the source split its files itself
            self.settings["validation_split"] = data["validation_split"]
            train, val = data["train"], data["val"]
        else:
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
        names = ["checkpoint.npz", "history.json", "history.csv", "results.json", "data.json"]
        names += ["history.png", "report.html", f"{self.stem}.weights.h5"]
        names.append(f"{self.stem}.weights.npz")
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

    @contextlib.contextmanager
    def batches(self, data, order) -> Iterator[Iterator[dict]]:
        """The epoch's remaining batches of `data` in `order` (the feeds of each step),
        read ahead of the step on a background thread (prefetch.py); leaving the `with`
        stops the thread. A batch may come back shorter than its rows (an image that
        fails to decode is dropped): the step and `end_batch` take its own length
        (`data.rows_in`); a batch left with no row at all is passed over, counted done."""
        todo = [batch_rows(order, b, self.batch_size) for b in range(self.batch, self.steps)]
        with Prefetcher(data, todo) as ahead:
            yield self._with_rows(ahead, getattr(data, "shared", False))

    def _with_rows(self, ahead, shared: bool) -> Iterator[dict]:
        """The batches; `rows_asked` counts the current one's rows before any share or drop.
        A process's share of a batch (torch_dist.SharedData) may be empty and is still
        stepped: the other processes wait for its part of the collectives."""
        for rows, feeds in ahead:
            self.rows_asked = len(rows)
            if shared or rows_in(feeds):
                yield feeds
                continue
            console.note(f"batch {self.batch + 1} of epoch {self.epoch + 1} has no readable row")
            self.batch += 1

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
        """Writes the inference model with the current weights (an ONNX model gets the
        training data's class names in its metadata)."""
        self.engine.export(path, self.engine.weights())
        if self.class_names and Path(path).suffix == ".onnx":
            run_end.add_class_names(path, self.class_names)

    def save_keras(self, path: Path) -> None:
        """Writes the current weights as a Keras 3 `.weights.h5`, or the model as a
        `.keras` archive, by the extension of `path`."""
        run_end.save_keras(self, Path(path))

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
        checkpoint, the trained inference model, the test data's logs, results.json
        (with the run's wall time, "seconds") and the end hooks; returns 0."""
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
            "seconds": time.perf_counter() - self.started,
        }
        write_results(self.out, self.results)
        speed = f", {rate:.1f} steps/s" if rate else ""
        console.result(f"{self.model}: {self.epoch} epochs, {self.step} steps{speed}")
        final.pop("learning_rate", None)
        if final:
            console.result(f"final: {format_logs(final)[3:]}")
        if test_logs is not None:
            console.result(f"test: {format_logs(test_logs)[3:]} ({test.size} rows)")
        console.result(f"wrote {self.trained}")
        for hook in self.end_hooks:
            hook(self)
        return EXIT_OK
