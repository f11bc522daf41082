"""A PyTorch training bundle for one model and train block (`ktrans codegen FILE --target
torch`, `ktrans train --engine torch`): the model as a torch.nn.Module, a short training
script over the shared runtime, the initial weights.

    paths = write_torch_bundle(graph, config, "out/", seed=0)

writes into `out/`:

- `<Model>.py`: the model as a torch.nn.Module that computes what Keras computes
  (transpiler.emit.torch writes it);
- `<Model>.init.npz`: its initial weights in Keras's layout, keyed "<layer>/<weight>"
  (the numbers `ktrans build --seed N` starts from, so both engines start alike);
- `train_<Model>.py`: the settings, how the data feeds a step, and the loop
  (templates/train_torch.py.j2), plain PyTorch over `ktrans_runtime/`;
- `ktrans_runtime/`: the runtime package every bundle carries (the same copy as the
  onnxruntime bundle's: its torch_* modules are the PyTorch engine);
- `README.md`: what the files are, what the data holds, how to run it, also under
  torchrun.

The script's settings are the onnxruntime script's (FEEDS, LOSSES, METRIC_PLAN, FIT,
CALLBACKS: the runtime shares the data, averaging and callbacks) plus what the torch
engine computes itself: LOSS, REGULARIZERS, OPTIMIZER, and in METRIC_PLAN what each
metric is computed from (torch_train). Every name and string from the .kdl file enters
the script as a literal (`py_literal`).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

from transpiler import __version__
from transpiler.emit.code.keras_names import is_safe_name_text
from transpiler.emit.code.torch_train import (
    loss_specs,
    metric_specs,
    optimizer_spec,
    regularizer_specs,
)
from transpiler.emit.code.train_literals import (
    checked_finalize,
    plain_data,
    render_template,
)
from transpiler.emit.code.train_script import (
    IDENTIFIER,
    RUNTIME,
    _callbacks,
    _directions,
    copy_runtime,
    fit_settings,
    pick_train,
)
from transpiler.emit.file_names import file_stem
from transpiler.emit.onnx.save import atomic_write_bytes
from transpiler.emit.train.names import LOSS_OF, LOSS_OUTPUT, TARGET
from transpiler.errors import KdlError, KdlErrors


def _fail(message: str, hint: str | None = None, span=None):
    raise KdlErrors([KdlError(span, message, hint)])


def feeds(graph, config) -> dict[str, dict]:
    """{feed name: spec} for the script's FEEDS: the model's inputs, then a target per
    output with a loss, typed as the training step takes them (as the onnxruntime
    script's FEEDS: sparse targets are int64 class ids)."""
    from transpiler.emit.train.losses import SPARSE, target_type

    keras = len(graph.inputs) == 1 and len(config.loss) == 1  # x_train / y_train serve

    def spec(array: str, t) -> dict:
        shape = [d if isinstance(d, int) else None for d in t.shape[1:]]
        return {"array": array, "dtype": t.dtype, "shape": shape}

    out = {}
    for v in graph.inputs:
        out[v.name] = spec(v.name, v.type)
        if keras:
            out[v.name]["keras"] = "x"
    for output in config.outputs:
        loss = config.loss.get(output)
        if loss is None:
            continue
        t = target_type(loss, graph.outputs[output].type)
        entry = {**spec(output, t), "loss": loss.name}
        if loss.name in SPARSE:
            entry["classes"] = graph.outputs[output].type.shape[-1]
            entry["ignore_class"] = loss.kwargs.get("ignore_class")
        if keras:
            entry["keras"] = "y"
        out[TARGET + output] = entry
    return out


def _activity_regularized(layer) -> bool:
    """Whether Keras adds an activity penalty for this layer's calls (as
    transpiler.emit.train.activity decides: a Bidirectional's own layers, nothing for a
    layer that TimeDistributed runs, except a Bidirectional's)."""
    from transpiler.emit.train.activity import activity_regularizer
    from transpiler.layers.recurrent_wrappers import Bidirectional, TimeDistributed

    if isinstance(layer, TimeDistributed):
        inner = layer.layer
        while isinstance(inner, TimeDistributed):
            inner = inner.layer
        return isinstance(inner, Bidirectional) and _activity_regularized(inner)
    if isinstance(layer, Bidirectional):
        pair = (layer.forward_layer, layer.backward_layer)
        return any(activity_regularizer(x) is not None for x in pair)
    return activity_regularizer(layer) is not None


def log_keys(config) -> tuple[dict, list[dict]]:
    """(LOSSES: {log key: the engine's name for it}, the metric plan), as Keras 3 logs:
    `loss`, then `<output>_loss` for each output when several have a loss."""
    from transpiler.emit.train.metrics import metric_plan

    trained = [o for o in config.outputs if o in config.loss]
    losses = {"loss": LOSS_OUTPUT}
    if len(trained) > 1:
        losses.update({f"{o}_loss": LOSS_OF + o for o in trained})
    plan = metric_plan(config)
    keys = set(losses)
    for entry in plan:
        if entry["key"] in keys:
            _fail(f"two metrics of train block '{config.name}' are both logged as '{entry['key']}'")
        keys.add(entry["key"])
        checked_finalize(entry["finalize"], list(entry["stats"]))
    return losses, plan


def script_settings(graph, config, seed: int, files: dict, cls: str) -> dict:
    """Everything the template needs; `s` holds the script's literals."""
    for label, name in (("model", graph.name), ("train block", config.name)):
        if not IDENTIFIER.match(name):
            _fail(f"the {label} name {name!r} is not a plain identifier", span=config.span)
    regularized = [layer for layer in graph.layers if _activity_regularized(layer)]
    if regularized:
        layer = regularized[0]
        span = next((n.span for n in graph.nodes if n.layer is layer), None) or config.span
        _fail(
            f"cannot write a PyTorch training script for {graph.name}: the torch engine "
            f"does not apply activity_regularizer yet (layer '{layer.name}')",
            "train it with the onnxruntime engine (ktrans train --engine onnxruntime)",
            span,
        )
    losses, plan = log_keys(config)
    directions = _directions(losses, plan)
    source = str(graph.file) if getattr(graph, "file", None) else None
    name = Path(source).name if source else ""
    source_text = name if is_safe_name_text(name) else 'the .kdl file named in FILES["source"]'
    fit = fit_settings(config)
    return {
        "model": file_stem(graph.name),  # as the bundle's files are named
        "train": config.name,
        "version": __version__,
        "source_text": source_text,  # checked text (a docstring holds it)
        "module": Path(files["module"]).stem,
        "cls": cls,
        "s": {
            "MODEL": graph.name,
            "TRAIN_BLOCK": config.name,
            "SEED": int(seed),
            "FILES": {"source": source, **files},
            "FEEDS": feeds(graph, config),
            "LOSS": loss_specs(config),
            "REGULARIZERS": regularizer_specs(graph),
            "OPTIMIZER": optimizer_spec(config),
            "LOSSES": losses,
            "METRIC_PLAN": metric_specs(config),
            "FIT": fit,
            "CALLBACKS": _callbacks(config, directions),
            "USE_EMA": bool(config.optimizer.kwargs.get("use_ema")),
            "DATA": plain_data(dict(config.data)),
        },
    }


def render_script(settings: dict) -> str:
    return render_template("train_torch.py.j2", settings)


def write_torch_bundle(
    graph,
    config,
    out_dir,
    seed: int = 0,
    program=None,
    source: str | None = None,
    inference=None,
) -> list[Path]:
    """Writes the PyTorch training bundle of `graph` trained as `config` into `out_dir`
    (created if missing); returns the paths written, the script first. `inference`: the
    graph of the trained .onnx when it differs from `graph` (the model as declared, with
    the dynamic axes that `graph` fixed to the data's lengths)."""
    from transpiler.emit.code.torch_export import export_files, keras_arrays
    from transpiler.emit.code.torch_readme import torch_readme
    from transpiler.emit.onnx.model import initial_weights
    from transpiler.emit.torch import torch_module

    out = Path(out_dir)
    name = file_stem(graph.name)  # names the bundle's files
    if not IDENTIFIER.match(name):
        _fail(f"the model name {name!r} is not a plain identifier")
    module = torch_module(graph, program, source=source)
    weights = initial_weights(graph, seed)
    export = export_files(inference or graph, weights, str(getattr(graph, "file", "")))
    files = {
        "script": f"train_{name}.py",
        "module": f"{module.class_name}.py",
        "init": f"{module.class_name}.init.npz",
        "keras": f"{name}.keras.json",
        "inference": f"{name}.onnx" if export["onnx"] else None,
        "offsets": f"{name}.offsets.json" if export["onnx"] else None,
        "trained": f"{name}.trained{'.onnx' if export['onnx'] else '.pt'}",  # the script's
    }
    if export["onnx_error"]:  # why there is no inference .onnx
        files["onnx_error"] = export["onnx_error"]
    settings = script_settings(graph, config, seed, files, module.class_name)
    script = render_script(settings)
    readme = torch_readme(name, config.name, files, settings["s"]["FEEDS"])
    init = io.BytesIO()
    np.savez(init, **keras_arrays(weights))
    out.mkdir(parents=True, exist_ok=True)
    written = [
        atomic_write_bytes(out / files["script"], script.encode()),
        atomic_write_bytes(out / files["module"], module.code.encode()),
        atomic_write_bytes(out / files["init"], init.getvalue()),
        atomic_write_bytes(out / files["keras"], export["keras"].encode()),
    ]
    if export["onnx"]:
        offsets = json.dumps(export["offsets"]) + "\n"
        written.append(atomic_write_bytes(out / files["inference"], export["onnx"]))
        written.append(atomic_write_bytes(out / files["offsets"], offsets.encode()))
    written.append(atomic_write_bytes(out / "README.md", readme.encode()))
    copy_runtime(out)
    written += _evaluation_files(graph, config, weights, settings, out, name)
    return [*written, out / RUNTIME]


def _evaluation_files(graph, config, weights: dict, settings: dict, out: Path, name: str):
    """What `ktrans evaluate`, `predict` and `report` read in a run folder, as the
    onnxruntime bundle writes them (bundle_extras): the evaluation model, its settings,
    the diagram and the summary. The evaluation model runs the trained .onnx's weights
    (ONNX layout, the recipes run backwards), so both engines' runs evaluate alike."""
    from transpiler.emit.code.bundle_extras import write_eval_settings, write_report_files
    from transpiler.emit.code.train_eval import build_eval_model

    constants = settings["s"]
    plan = [
        {key: entry[key] for key in ("key", "stats", "combine", "finalize")}
        for entry in log_keys(config)[1]
    ]
    files = {**constants["FILES"], "eval": f"{name}.eval.onnx"}
    view = {
        **settings,
        "s": {
            **constants,
            "FILES": files,
            "METRIC_PLAN": plan,
            "OPTIMIZER": config.optimizer.name,
            "LEARNING_RATE": constants["OPTIMIZER"]["learning_rate"],
        },
    }
    written = write_report_files(graph, out)
    if not constants["FILES"].get("inference"):
        return written  # no trained .onnx to evaluate (a note said why)
    try:
        proto = build_eval_model(graph, config, weights)
    except NotImplementedError as e:
        print(f"note: no evaluation model in the bundle ({e})", file=sys.stderr)
        return written
    written.append(atomic_write_bytes(out / files["eval"], proto.SerializeToString()))
    return [*written, write_eval_settings(graph, config, view, out)]


def codegen_torch_bundle(
    graph, output, train=None, seed=0, program=None, source=None, inference=None
) -> str:
    """`ktrans codegen --target torch` for a model with a train block: the bundle into
    `output`; returns the line to print."""
    out = Path(output or f"{file_stem(graph.name)}_torch")
    config = pick_train(graph, train)
    paths = write_torch_bundle(graph, config, out, seed, program, source, inference)
    names = ", ".join(p.name for p in paths)
    return f"wrote {out}/ ({names}); run: python {paths[0]} --data D"
