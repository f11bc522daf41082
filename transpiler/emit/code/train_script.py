"""A standalone training bundle for one model and train block: a Python script that trains
with numpy + onnxruntime only, the ONNX models it runs and the initial state.

    paths = write_training_bundle(graph, config, "out/", seed=0)

writes into `out/`:

- `train_<Model>.py`: the model's settings, how its data feeds a step, and the training
  loop (rendered from templates/train_script.py.j2);
- `ktrans_runtime/`: a copy of the runtime package (templates/ktrans_runtime), the same in
  every bundle: the machinery the loop uses;
- `<Model>.train.onnx`: one training step (`build_training_model`): batch, `ktrans:step`,
  `ktrans:lr`, parameters, buffers and optimizer slots in; `ktrans:loss`, metrics and
  `new:<state>` out (transpiler.emit.train.names);
- `<Model>.eval.onnx`: the same forward pass in inference mode (Dropout off, moving
  statistics used) with loss and metrics but no update: validation and test data;
- `<Model>.onnx`: the inference model (`build_model`) holding the initial weights; the script
  writes the trained model by overwriting each weight's bytes in a copy of this file (the
  byte ranges are computed here, so the script needs no `onnx` package);
- `<Model>.init.npz`: the initial parameters, buffers and slots, named as the models' inputs;
- `<Model>.keras.json`: how the script writes the trained weights in Keras's formats
  (transpiler.emit.code.keras_export_info), with the `ktrans_runtime/` package it uses;
- `<Model>.offsets.json`: where each weight's bytes sit in `<Model>.onnx`;
- `README.md`: what the files are, what the data holds, what a run writes
  (transpiler.emit.code.train_readme).

Every name and string that comes from a .kdl file enters the script as a Python literal
(`py_literal`, transpiler.emit.code.train_literals), never as code; the model and train
block names, which also name files and appear in the script's docstring, must be plain
identifiers. The metrics follow `metric_plan` (transpiler.emit.train.metrics): the plan
is a literal too, and its finalize expressions, which the script evaluates, come from
ktrans's metric catalogue and are checked here (`checked_finalize`) to be arithmetic on
the statistics with literal constants only.

This module chooses the train block, gathers the script's settings and writes the bundle;
the evaluation model is built in train_eval, the weights' byte ranges found in
train_weight_bytes (both in transpiler.emit.code).
"""

from __future__ import annotations

import io
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import onnx

from transpiler import __version__
from transpiler.emit.code.bundle_extras import write_bundle_extras
from transpiler.emit.code.keras_export_info import keras_export_info
from transpiler.emit.code.train_eval import build_eval_model
from transpiler.emit.code.train_literals import (
    checked_finalize,
    plain_data,
    render_template,
)
from transpiler.emit.code.train_readme import bundle_readme
from transpiler.emit.code.train_weight_bytes import weight_offsets
from transpiler.emit.file_names import file_stem
from transpiler.emit.onnx.model import build_model, initial_weights
from transpiler.emit.onnx.save import PROTOBUF_LIMIT, atomic_write_bytes
from transpiler.emit.train.names import LOSS_OF, LOSS_OUTPUT, LR_INPUT, STEP_INPUT, TARGET
from transpiler.errors import KdlError, KdlErrors, printable

RUNTIME = "ktrans_runtime"  # the package every bundle carries, beside the script
DEFAULT_TRAIN = "default"  # the name of a train block written without `as NAME`
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _fail(message: str, hint: str | None = None, span=None):
    raise KdlErrors([KdlError(span, message, hint)])


# ------------------------------------------------------------------ choosing a train block


def pick_train(graph, name: str | None = None):
    """The train block `name` of `graph`; without a name, its only one, or the one
    written without a name (`train M { ... }`, called "default") among named ones."""
    trains = graph.trains
    if not trains:
        _fail(
            f"model {graph.name} has no train block",
            f"add one: train {graph.name} {{ loss = ..., optimizer = ... }}",
        )
    if name is not None:
        if name not in trains:
            _fail(
                f"model {graph.name} has no train block '{name}'",
                f"its train blocks: {', '.join(trains)}",
            )
        return trains[name]
    if len(trains) > 1 and DEFAULT_TRAIN in trains:
        return trains[DEFAULT_TRAIN]
    if len(trains) > 1:
        _fail(
            f"model {graph.name} has {len(trains)} train blocks and none is the default "
            f"(`train {graph.name} {{ ... }}`, without a name): {', '.join(trains)}",
            "choose one with --train NAME",
        )
    return next(iter(trains.values()))


# ------------------------------------------------------------------ what the script knows


def _log_names(graph, config, tm) -> tuple[dict, list[dict]]:
    """({log key: training-model output} for the losses, the metric plan): Keras 3's
    keys, `loss` and `<output>_loss` with several losses; the metrics' keys and how to
    compute them are `metric_plan`'s (module docstring of transpiler.emit.train.metrics),
    checked against the training model's outputs."""
    from transpiler.emit.train.metrics import metric_plan

    losses = {"loss": LOSS_OUTPUT}
    for out in tm.losses[1:]:
        losses[f"{out[len(LOSS_OF) :]}_loss"] = out
    plan = metric_plan(config)
    keys = set(losses)
    fed = set(tm.metrics)
    used: set[str] = set()
    for entry in plan:
        key = entry["key"]
        if key in keys:
            _fail(f"two metrics of train block '{config.name}' are both logged as '{key}'")
        keys.add(key)
        if entry["combine"] not in ("mean", "sum"):
            raise AssertionError(f"metric {key}: unknown combine {entry['combine']!r}")
        missing = [o for o in entry["stats"].values() if o not in fed]
        if missing:
            raise AssertionError(f"metric {key}: the training model has no output {missing[0]}")
        used.update(entry["stats"].values())
        checked_finalize(entry["finalize"], list(entry["stats"]))
    if fed - used:
        raise AssertionError(f"metric outputs without a log key: {sorted(fed - used)}")
    return losses, plan


def _directions(losses: dict, plan: list[dict]) -> dict[str, str]:
    """The direction, "min" or "max", of every log key (for mode=auto)."""
    out = dict.fromkeys(losses, "min")
    for entry in plan:
        out[entry["key"]] = "max" if entry["direction"] == "up" else "min"
    return out


def _callbacks(config, directions: dict) -> list[dict]:
    from transpiler.templates.ktrans_runtime.callbacks import REGISTRY

    supported = sorted(REGISTRY)  # the bundle runtime's callback classes
    out = []
    for cb in config.callbacks:
        if cb.name not in supported:
            _fail(
                f"the callback {cb.name} is not supported by generated training scripts",
                f"supported: {', '.join(supported)}",
                config.span,
            )
        entry = {"name": cb.name, **plain_data(cb.kwargs)}
        if entry.get("mode") == "auto":
            base = entry["monitor"].removeprefix("val_")
            entry["mode"] = directions.get(base, "min")
        out.append(entry)
    return out


def _feeds(graph, config, tm) -> dict[str, dict]:
    """{feed name: spec} for the script's FEEDS: each data input of the training model,
    typed and shaped as that model declares it (axes fixed to the data stay fixed)."""
    from transpiler.emit.train.losses import SPARSE

    declared = {i.name: i.type.tensor_type for i in tm.proto.graph.input}
    inputs = [v.name for v in graph.inputs]
    keras = len(inputs) == 1 and len(config.loss) == 1  # x_train / y_train serve too
    feeds = {}
    for name in tm.data_inputs:
        t = declared[name]
        spec = {
            "array": name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
            "shape": [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim[1:]],
        }
        if name.startswith(TARGET):
            output = name[len(TARGET) :]
            loss = config.loss[output]
            spec.update(array=output, loss=loss.name)
            if loss.name in SPARSE:  # int64 class ids, not one-hot rows
                spec["classes"] = graph.outputs[output].type.shape[-1]
                spec["ignore_class"] = loss.kwargs.get("ignore_class")
            if keras:
                spec["keras"] = "y"
        elif keras:
            spec["keras"] = "x"
        feeds[name] = spec
    return feeds


def fit_settings(config) -> dict:
    """The train block's fit() settings, as both engines' scripts hold them (FIT)."""
    return {
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "validation_split": float(config.validation_split),
        "shuffle": bool(config.shuffle),
        "initial_epoch": config.initial_epoch,
        "steps_per_epoch": config.steps_per_epoch,
        "validation_steps": config.validation_steps,
        "validation_batch_size": config.validation_batch_size,
        "validation_freq": config.validation_freq,
        "verbose": config.verbose,
    }


def script_settings(graph, config, tm, seed: int, files: dict) -> dict:
    """Everything the template needs, as plain data: `s` holds the script's literals."""
    source = str(graph.file) if getattr(graph, "file", None) else None  # as ktrans was given it
    for label, name in (("model", graph.name), ("train block", config.name)):
        if not IDENTIFIER.match(name):
            _fail(f"the {label} name {name!r} is not a plain identifier", span=config.span)
    losses, plan = _log_names(graph, config, tm)
    directions = _directions(losses, plan)
    callbacks = _callbacks(config, directions)
    lr = plain_data(config.optimizer.kwargs.get("learning_rate", 0.001))
    metric_plan = [
        {key: entry[key] for key in ("key", "stats", "combine", "finalize")} for entry in plan
    ]
    fit = fit_settings(config)
    return {
        "model": file_stem(graph.name),  # as the bundle's files are named
        "train": config.name,
        "version": __version__,
        "s": {
            "MODEL": graph.name,
            "TRAIN_BLOCK": config.name,
            "SEED": int(seed),
            "FILES": {"source": source, **files},
            "GRAPH": {"step": STEP_INPUT, "learning_rate": LR_INPUT, "loss": LOSS_OUTPUT},
            "FEEDS": _feeds(graph, config, tm),
            "LOSSES": losses,
            "METRIC_PLAN": metric_plan,
            "OPTIMIZER": config.optimizer.name,
            "LEARNING_RATE": lr,
            "FIT": fit,
            "CALLBACKS": callbacks,
            "USE_EMA": bool(config.optimizer.kwargs.get("use_ema")),
            "DATA": plain_data(dict(config.data)),
        },
    }


def render_script(settings: dict) -> str:
    return render_template("train_script.py.j2", settings)


# ------------------------------------------------------------------ the bundle


def copy_runtime(out: Path) -> list[Path]:
    """Copies the runtime package (templates/ktrans_runtime) into `out/ktrans_runtime/`,
    each file atomically; removes modules there that the package no longer has."""
    source = resources.files("transpiler.templates").joinpath(RUNTIME)
    target = out / RUNTIME
    target.mkdir(parents=True, exist_ok=True)
    names = sorted(f.name for f in source.iterdir() if f.is_file() and f.name.endswith(".py"))
    written = [atomic_write_bytes(target / n, source.joinpath(n).read_bytes()) for n in names]
    for stale in target.glob("*.py"):
        if stale.name not in names:
            stale.unlink()
    return written


def _check_same_weights(graph, config, state: dict, eval_proto, inference) -> None:
    """The evaluation and inference models must hold the weights as the training model
    does (same names, layouts and values): the script feeds its state to the first and
    writes it into the second. A layer whose inference form folds its weights (as
    BatchNormalization on an axis ONNX's op cannot take) breaks this."""
    data = {v.name for v in graph.inputs} | {TARGET + n for n in config.loss}
    fed = [i.name for i in eval_proto.graph.input if i.name not in data]
    initializers = {t.name: t for t in inference.graph.initializer}
    odd = [n for n in fed if n not in state] + [n for n in state if n not in initializers]
    odd += [
        n
        for n in state
        if n in initializers
        and not np.array_equal(onnx.numpy_helper.to_array(initializers[n]), state[n])
    ]
    if odd:
        layer = odd[0].split("/")[0]
        span = next((n.span for n in graph.nodes if n.layer.name == layer), config.span)
        _fail(
            f"cannot generate a training script for {graph.name}: the layer '{layer}' "
            f"stores its weights differently for inference ({odd[0]})",
            "training bundles need layers whose inference form uses the training weights",
            span,
        )


def write_training_bundle(graph, config, out_dir, seed: int = 0, inference=None) -> list[Path]:
    """Writes the training bundle of `graph` trained as `config` into `out_dir` (created if
    missing); returns the paths written, the script first. `inference`: the graph of the
    trained .onnx when it differs from `graph` (the model as declared, with dynamic axes
    that `graph` fixed to the data's lengths; same layers and weights)."""
    from transpiler.emit.train.model import build_training_model

    out = Path(out_dir)
    name = file_stem(graph.name)  # names the bundle's files
    if not IDENTIFIER.match(name):
        _fail(f"the model name {name!r} is not a plain identifier")
    weights = initial_weights(graph, seed)
    try:
        tm = build_training_model(graph, config, seed=seed, weights=weights)
        eval_proto = build_eval_model(graph, config, weights)
    except NotImplementedError as e:
        _fail(f"cannot generate a training script for {name}: {e}", span=config.span)
    inference_graph = inference or graph
    inference = build_model(
        inference_graph, weights=weights, source=str(getattr(graph, "file", ""))
    )

    state = {**tm.params, **tm.buffers}
    _check_same_weights(graph, config, state, eval_proto, inference)
    if inference.ByteSize() > PROTOBUF_LIMIT:
        _fail(f"{name} is over 2 GB: training bundles of models this large are not supported")
    inference_bytes, offsets = weight_offsets(inference, list(state))

    files = {
        "script": f"train_{name}.py",
        "train": f"{name}.train.onnx",
        "eval": f"{name}.eval.onnx",
        "inference": f"{name}.onnx",
        "init": f"{name}.init.npz",
        "offsets": f"{name}.offsets.json",
        "trained": f"{name}.trained.onnx",  # written by the script
        "keras": f"{name}.keras.json",
    }
    keras_info = json.dumps(keras_export_info(inference_graph, state_names=state, weights=weights))
    settings = script_settings(graph, config, tm, seed, files)
    script = render_script(settings)
    readme = bundle_readme(name, config.name, files, settings["s"]["FEEDS"])

    init = io.BytesIO()
    np.savez(init, **{**tm.params, **tm.buffers, **tm.slots})
    out.mkdir(parents=True, exist_ok=True)
    written = [
        atomic_write_bytes(out / files["script"], script.encode()),
        atomic_write_bytes(out / files["train"], tm.proto.SerializeToString()),
        atomic_write_bytes(out / files["eval"], eval_proto.SerializeToString()),
        atomic_write_bytes(out / files["inference"], inference_bytes),
        atomic_write_bytes(out / files["init"], init.getvalue()),
        atomic_write_bytes(out / files["keras"], keras_info.encode()),
        atomic_write_bytes(out / files["offsets"], (json.dumps(offsets) + "\n").encode()),
        atomic_write_bytes(out / "README.md", readme.encode()),
    ]
    copy_runtime(out)
    written += write_bundle_extras(graph, config, settings, out)
    return [*written, out / RUNTIME]


def codegen_train(
    graph, output: str | None, train: str | None = None, seed: int = 0, inference=None
) -> str:
    """`ktrans codegen --target train`: the bundle into `output` (default
    `<Model>_train/`); returns the line to print. `inference` as for
    `write_training_bundle`."""
    out = Path(output or f"{file_stem(graph.name)}_train")
    config = pick_train(graph, train)
    paths = write_training_bundle(graph, config, out, seed=seed, inference=inference)
    return (
        f"wrote {printable(str(out))}/ ({', '.join(p.name for p in paths)}); "
        f"run: python {printable(str(paths[0]))} --data D"
    )
