"""Checks `train` blocks against their model and the training catalogue, and stores each
checked block as `graphs[model].trains[name]` (a `training.TrainConfig`).

    train TicketTriage as fast {
        loss      = { priority: binary_crossentropy(from_logits=true), department: ... }
        optimizer = Adam(learning_rate=ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9))
        ...
    }

Each problem is reported at the exact part of the value at fault: the catalogue raises
`TrainError` with a path into the value, and `locate` follows that path down the syntax
tree (a keyword's value, a list item, a dict entry) as far as the tree goes.
"""

from __future__ import annotations

from transpiler.errors import ErrorSink, Span, suggest
from transpiler.graph.evaluate import Fail
from transpiler.graph.program import Program
from transpiler.layers.args import (
    ArgError,
    boolean,
    describe,
    float_in,
    non_negative_int,
    optional,
    positive_int,
)
from transpiler.parser import ast
from transpiler.training.callbacks import log_keys, resolve_callbacks
from transpiler.training.config import TrainConfig, TrainError
from transpiler.training.data_section import CONVERTERS as DATA_KEYS
from transpiler.training.data_section import check_against_model
from transpiler.training.losses import resolve_loss_weights, resolve_losses
from transpiler.training.metrics import resolve_metrics
from transpiler.training.optimizers import DEFAULT, optimizer


def _verbose(value):
    if value == "auto" or getattr(value, "name", None) == "auto":
        return "auto"
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ArgError(f'expected "auto", 0, 1 or 2, got {describe(value)}')
    return value


# fit/compile settings that are one plain value: name -> converter (defaults: TrainConfig)
SETTINGS = {
    "batch_size": positive_int,
    "epochs": positive_int,
    "validation_split": float_in(0, 1, hi_open=True),
    "shuffle": boolean,
    "steps_per_epoch": optional(positive_int),
    "initial_epoch": non_negative_int,
    "validation_steps": optional(positive_int),
    "validation_batch_size": optional(positive_int),
    "validation_freq": positive_int,
    "verbose": _verbose,
    "steps_per_execution": positive_int,
}
STRUCTURED = ("loss", "loss_weights", "optimizer", "metrics", "weighted_metrics", "callbacks")
KEYS = STRUCTURED + tuple(SETTINGS)
NOT_HERE = {
    "lr": "set it on the optimizer: optimizer = Adam(learning_rate=1e-3)",
    "learning_rate": "set it on the optimizer: optimizer = Adam(learning_rate=1e-3)",
    "validation_data": "validation data is given when training runs; or use validation_split",
    "class_weight": "class weights are not supported in train blocks yet",
    "sample_weight": "sample weights come with the data, when training runs",
}


def check_trains(
    program: Program, graphs: dict, consts: dict, sink: ErrorSink, wanted: list[str]
) -> None:
    """Checks every train block; stores the good ones in their model's Graph.trains."""
    seen: dict[tuple[str, str], ast.TrainDef] = {}
    for train in program.trains:
        if train.model not in program.models:
            sink.error(
                train.model_span,
                f"train block for unknown model '{train.model}'",
                suggest(train.model, program.models)
                or f"models in this file: {', '.join(program.models)}",
            )
            continue
        key = (train.model, train.name)
        if key in seen:
            named = "" if train.name == "default" else f" named '{train.name}'"
            sink.error(
                train.model_span,
                f"model '{train.model}' has two train blocks{named}",
                f"the first is at {seen[key].model_span}; name each one: "
                f"train {train.model} as fast {{ ... }}",
            )
            continue
        seen[key] = train
        if train.model not in wanted or train.model not in graphs:
            continue
        config = TrainChecker(program, consts, sink, train, graphs[train.model]).check()
        if config is not None:
            graphs[train.model].trains[train.name] = config
    for name in {t.model for t in seen.values() if t.model in graphs and t.model in wanted}:
        check_trainable(graphs[name], sink)


def check_trainable(graph, sink: ErrorSink) -> None:
    """Every layer of a model with a train block can train: a layer that ktrans cannot
    train as configured (`Layer.cannot_train`) is an error at its call."""
    for node in graph.nodes:
        reason = node.layer.cannot_train()
        if reason:
            sink.error(
                node.span,
                f"{node.layer.keras_class()} ('{node.layer.name}') cannot be trained: {reason}",
                "docs/training.md lists what cannot train; without a train block the model "
                "builds for inference",
            )


def locate(expr: ast.Expr, path: tuple, at_name: bool = False, consts: dict | None = None) -> Span:
    """The span of the part of `expr` that `path` leads to (as far as the tree goes).

    A const on the way is followed into its definition: `optimizer = opt` with
    `const opt = Adam(learning_rate=-1)` points at the `-1`."""
    span = expr.span
    for i, step in enumerate(path):
        last = i == len(path) - 1
        for _ in range(64):  # a const may name another const
            if not (isinstance(expr, ast.Name) and consts and expr.id in consts):
                break
            expr = consts[expr.id]
        if isinstance(expr, ast.Call) and isinstance(step, int) and step < len(expr.args):
            expr = expr.args[step]
        elif isinstance(expr, ast.Call) and isinstance(step, str):
            kw = next((k for k in expr.kwargs if k.name == step), None)
            if kw is None:
                break
            if last and at_name:
                return kw.span
            expr = kw.value
        elif isinstance(expr, (ast.ListExpr, ast.TupleExpr)) and isinstance(step, int):
            if step >= len(expr.items):
                break
            expr = expr.items[step]
        elif isinstance(expr, ast.DictExpr) and isinstance(step, str):
            entry = next((e for e in expr.items if e[0] == step), None)
            if entry is None:
                break
            if last and at_name:
                return entry[1]
            expr = entry[2]
        else:
            break
        span = expr.span
    return span


class TrainChecker:
    def __init__(self, program, consts, sink: ErrorSink, train: ast.TrainDef, graph) -> None:
        from transpiler.graph.builder import GraphBuilder

        self.builder = GraphBuilder(program, consts, sink)
        self.consts = {c.name: c.value for c in program.consts}
        self.sink = sink
        self.train = train
        self.graph = graph
        self.outputs = {name: v.type for name, v in graph.outputs.items()}
        self.items: dict[str, ast.Keyword] = {}
        self.values: dict[str, object] = {}
        self.failed: set[str] = set()

    # ------------------------------------------------------------ reporting

    def report(self, name: str, error: TrainError) -> None:
        span = locate(self.items[name].value, error.path, error.at_name, self.consts)
        self.sink.error(span, error.message, error.hint)

    def run(self, name: str, fn, *args, default=None):
        """fn(value, *args, problems) with the item's value; reports every TrainError."""
        if name not in self.values:
            return default
        problems: list[TrainError] = []
        try:
            result = fn(self.values[name], *args, problems)
        except TrainError as e:
            problems.append(e)
            result = default
        for p in problems:
            self.report(name, p)
        if problems:
            self.failed.add(name)
        return result

    # ------------------------------------------------------------ the block

    def read_items(self) -> None:
        for item in self.train.items:
            if item.name in self.items:
                first = self.items[item.name].span
                self.sink.error(
                    item.span,
                    f"'{item.name}' is set twice in this train block",
                    f"the first is at line {first.line}",
                )
                continue
            if item.name not in KEYS:
                self.sink.error(
                    item.span,
                    f"unknown train setting '{item.name}'",
                    NOT_HERE.get(item.name)
                    or suggest(item.name, KEYS)
                    or f"train blocks take: {', '.join(KEYS)}",
                )
                continue
            self.items[item.name] = item
            try:
                self.values[item.name] = self.builder.eval(item.value)
            except Fail:
                self.failed.add(item.name)

    def check(self) -> TrainConfig | None:
        before = len(self.sink.errors)
        self.read_items()
        if "loss" not in self.items:
            self.sink.error(
                self.train.span,
                f"the train block for '{self.train.model}' has no loss",
                "add one, e.g. loss = categorical_crossentropy",
            )
        loss = self.run("loss", resolve_losses, self.outputs, default={})
        weights = self.run(
            "loss_weights", resolve_loss_weights, self.outputs, loss, default=None
        ) or {o: 1.0 for o in self.outputs if o in loss}
        opt = self.run("optimizer", lambda v, p: optimizer(v), default=None)
        if "optimizer" not in self.items:
            opt = optimizer(DEFAULT)
        masked = self.masked_outputs()
        metrics = {
            what: self.run(what, self.metrics_of, loss, what, masked, default={})
            for what in ("metrics", "weighted_metrics")
        }
        settings = self.settings()
        keys = None
        if not self.failed & {"loss", "metrics", "weighted_metrics"}:
            names = list(self.outputs)
            keys = log_keys(names, loss, metrics["metrics"], metrics["weighted_metrics"])
        callbacks = self.run("callbacks", resolve_callbacks, keys, opt, default=[])
        data = self.data_section(loss, settings.get("validation_split", 0.0))
        if len(self.sink.errors) != before or opt is None:
            return None
        return TrainConfig(
            name=self.train.name,
            model=self.train.model,
            span=self.train.span,
            outputs=list(self.outputs),
            loss=loss,
            loss_weights=weights,
            optimizer=opt,
            metrics=metrics["metrics"],
            weighted_metrics=metrics["weighted_metrics"],
            callbacks=callbacks,
            data=data,
            **settings,
        )

    def metrics_of(self, value, loss: dict, what: str, masked: set, problems: list) -> dict:
        return resolve_metrics(value, self.outputs, loss, what, problems, masked)

    def masked_outputs(self) -> set[str]:
        """The outputs with a Keras mask, where the block has metrics (a metric there must
        ignore the mask). Masks are found by lowering the model (emit.onnx.model)."""
        if not {"metrics", "weighted_metrics"} & set(self.values):
            return set()
        from transpiler.emit.onnx.model import masked_outputs

        return masked_outputs(self.graph)

    def data_section(self, loss: dict, fit_split: float) -> dict:
        """The checked `data { }` section (training/data_section.py), as plain values."""
        out: dict = {}
        items: dict[str, ast.Keyword] = {}
        for section in self.train.sections:
            if section.name != "data":
                self.sink.error(
                    section.span,
                    f"unknown section '{section.name}' in a train block",
                    "train blocks have one section: data { ... }",
                )
                continue
            if items:
                self.sink.error(section.span, "the train block has two data sections")
                continue
            for item in section.items:
                if item.name in items:
                    self.sink.error(item.span, f"'{item.name}' is set twice in the data section")
                    continue
                if item.name not in DATA_KEYS:
                    self.sink.error(
                        item.span,
                        f"unknown data setting '{item.name}'",
                        suggest(item.name, DATA_KEYS)
                        or f"data sections take: {', '.join(DATA_KEYS)}",
                    )
                    continue
                items[item.name] = item
                try:
                    value = self.builder.eval(item.value)
                    out[item.name] = DATA_KEYS[item.name](value)
                except Fail:
                    continue
                except ArgError as e:
                    self.sink.error(item.value.span, f"{item.name} {e.message}", e.hint)
                except TrainError as e:
                    span = locate(item.value, e.path, e.at_name, self.consts)
                    self.sink.error(span, e.message, e.hint)
        for problem in check_against_model(out, self.graph, loss, fit_split):
            item = items[problem.path[0]]
            span = locate(item.value, problem.path[1:], problem.at_name, self.consts)
            self.sink.error(span, problem.message, problem.hint)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def settings(self) -> dict:
        out = {}
        for name, convert in SETTINGS.items():
            if name not in self.values:
                continue
            try:
                out[name] = convert(self.values[name])
            except ArgError as e:
                self.report(name, TrainError(f"{name} {e.message}", e.hint))
        start, epochs = out.get("initial_epoch", 0), out.get("epochs", 1)
        epochs_known = "epochs" in out or "epochs" not in self.values
        if "initial_epoch" in out and epochs_known and start >= epochs:
            self.report(
                "initial_epoch",
                TrainError(
                    f"initial_epoch {start} is not before epochs ({epochs}): fit would train "
                    "nothing",
                    "epochs is the index of the last epoch, not a count from initial_epoch",
                ),
            )
        return out
