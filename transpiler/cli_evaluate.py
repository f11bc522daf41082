"""`ktrans evaluate MODEL.onnx|RUN_DIR --data D`: the loss and metrics of a trained model on
data, as Keras's `model.evaluate()` computes them: the run's evaluation model (inference
mode: Dropout off, moving statistics) with the trained weights, batches of --batch-size
(Keras's default 32), batch means weighted by batch size, metrics combined over all
batches as the run's metric plan says. Data as `ktrans train` reads it, with the run's
data settings (data.json): an image folder, a CSV table, a .npy folder, an .npz (its
test arrays if it has them, else its training arrays). Writes the logs as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from transpiler.run_folder import fail, open_run, trained_weights

PROGRESS_AFTER = 2.0  # seconds: show progress on work longer than this


def open_npz(path: Path, feeds):
    """(dataset, what) from an .npz: its test arrays, else its training arrays, checked
    and converted as a .npy folder's files (no scaling: the model's layers do that)."""
    import numpy as np

    from transpiler.templates.ktrans_runtime.data_errors import DataError
    from transpiler.templates.ktrans_runtime.npy_dir import NpyDataset, column_for, find_split

    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read it: {e}") from None
    by_name = {f.name: f for f in feeds}
    with archive:
        for split in ("test", "train"):
            found = find_split(set(archive.files), feeds, split)
            if found is not None:
                columns = {
                    feed: column_for(Path(f"{path}:{name}"), by_name[feed], archive[name])
                    for feed, name in found.items()
                }
                dataset = NpyDataset(columns)
                return dataset, f"the {split} arrays of {path} ({dataset.size} rows)"
    raise DataError(f"{path}: no arrays for the model's inputs and outputs")


class TrainedModel:
    """The run's evaluation model with the trained weights, evaluating a batch as the
    runtime's engines do (`evaluate(batch)` -> its losses and metric statistics), so the
    runtime's `metrics.evaluate` and `Averages` accumulate them as in training."""

    def __init__(self, run, progress=None, steps: int = 0) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(run.eval_model), providers=["CPUExecutionProvider"])
        weights = trained_weights(run.model_file)
        inputs = self.session.get_inputs()
        self.state = {i.name: weights[i.name] for i in inputs if i.name in weights}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.progress, self.steps, self.done = progress, steps, 0

    def evaluate(self, batch: dict) -> dict:
        values = dict(zip(self.outputs, self.session.run(self.outputs, {**batch, **self.state})))
        self.done += 1
        if self.progress:
            self.progress(self.done, self.steps)
        return values


def evaluate(run, dataset, batch_size: int, progress=None) -> dict:
    """The logs of the run's trained model on `dataset`, as Keras's evaluate() gives
    them: the runtime's evaluation pass (batches read ahead, each weighted by its own
    length) and its metric accumulation (ktrans_runtime.metrics)."""
    from transpiler.templates.ktrans_runtime.metrics import Averages
    from transpiler.templates.ktrans_runtime.metrics import evaluate as evaluate_batches

    steps = -(-dataset.size // batch_size)
    model = TrainedModel(run, progress, steps)
    averages = Averages(run.settings["losses"], run.settings["metric_plan"])
    logs = evaluate_batches(model, dataset, batch_size, averages)
    if not logs:
        fail("no rows to evaluate")
    return logs


def format_logs(logs: dict) -> str:
    """Keras's order and format: keys sorted, 4 decimals."""

    def shown(value) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(f"{v:.4f}" for v in value) + "]"
        return f"{value:.4f}"

    return " - ".join(f"{key}: {shown(logs[key])}" for key in sorted(logs))


class Progress:
    """`evaluate: 120/313 batches` on stderr, for work longer than PROGRESS_AFTER."""

    def __init__(self, what: str) -> None:
        self.what, self.start, self.shown = what, time.perf_counter(), 0.0

    def __call__(self, done: int, total: int | None) -> None:
        """`total` None: not known (a CSV file read as it streams); call finish()."""
        now = time.perf_counter()
        if now - self.start < PROGRESS_AFTER or (now - self.shown < 0.5 and done != total):
            return
        self.shown = now
        end = "\n" if done == total else ""
        count = f"{done}/{total}" if total is not None else str(done)
        print(f"\r{self.what}: {count} batches", end=end, file=sys.stderr, flush=True)

    def finish(self, done: int, total: int | None) -> None:
        """Ends the line of work whose total was not known, if it showed progress."""
        if total is None and self.shown:
            print(f"\r{self.what}: {done} batches", file=sys.stderr, flush=True)


def feeds_for(run, session_inputs):
    from transpiler.templates.ktrans_runtime.sources import feeds_of

    settings = run.settings
    targets = {out: spec["target"] for out, spec in settings["outputs"].items()}
    return feeds_of(session_inputs, settings["inputs"], targets)


def cmd_evaluate(args) -> int:
    import onnxruntime as ort

    from transpiler.emit.onnx.save import atomic_write_bytes
    from transpiler.templates.ktrans_runtime.data_errors import DataError
    from transpiler.templates.ktrans_runtime.sources import data_kind, open_eval_data

    run = open_run(args.model)
    if run.settings is None:
        fail(
            f"{args.model}: evaluate needs the run folder the model was trained in "
            "(its <Model>.eval.json and <Model>.eval.onnx)",
            "pass the --out folder of ktrans train",
        )
    if args.batch_size < 1:
        fail("--batch-size must be at least 1")
    session = ort.InferenceSession(str(run.eval_model), providers=["CPUExecutionProvider"])
    feeds = feeds_for(run, session.get_inputs())
    del session
    try:
        if data_kind(args.data) == "npz":
            dataset, what = open_npz(Path(args.data), feeds)
        else:
            dataset, what = open_eval_data(args.data, feeds, run.data, args.subset)
        print(f"evaluating {run.settings['model']} on {what}", file=sys.stderr)
        logs = evaluate(run, dataset, args.batch_size, Progress("evaluate"))
    except DataError as e:
        fail(str(e))
    steps = -(-dataset.size // args.batch_size)
    print(f"{steps}/{steps} - {format_logs(logs)}")
    out = Path(args.output) if args.output else run.folder / "evaluation.json"
    record = {"model": str(run.model_file), "data": str(args.data), "rows": dataset.size,
              "batch_size": args.batch_size, "logs": logs}  # fmt: skip
    atomic_write_bytes(out, (json.dumps(record, indent=1) + "\n").encode())
    print(f"wrote {out}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="loss and metrics of a trained model on data, as Keras's evaluate()",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", metavar="MODEL.onnx|RUN_DIR", help="a run folder or its .onnx")
    p.add_argument(
        "--data", required=True, metavar="D", help="image folder, CSV, .npy folder, .npz"
    )
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="default 32 (Keras)")
    p.add_argument(
        "--subset",
        choices=["training", "validation"],
        help="of an image folder split as in training (default: the validation subset "
        "when training split the folder, else every file)",
    )
    p.add_argument("-o", "--output", metavar="FILE.json", help="default RUN_DIR/evaluation.json")
    p.set_defaults(run=cmd_evaluate)
