"""A standalone training bundle for one model and train block: a Python script that trains
with numpy + onnxruntime only, the ONNX models it runs and the initial state.

    paths = write_training_bundle(graph, config, "out/", seed=0)

writes into `out/`:

- `train_<Model>.py`: the training loop (rendered from templates/train_script.py.j2);
- `<Model>.train.onnx`: one training step (`build_training_model`): batch, `step`, `lr`,
  parameters, buffers and optimizer slots in; `loss`, metrics and `new:<state>` out;
- `<Model>.eval.onnx`: the same forward pass in inference mode (Dropout off, moving
  statistics used) with loss and metrics but no update: validation and test data;
- `<Model>.onnx`: the inference model (`build_model`) holding the initial weights; the script
  writes the trained model by overwriting each weight's bytes in a copy of this file (the
  byte ranges are computed here, so the script needs no `onnx` package);
- `<Model>.init.npz`: the initial parameters, buffers and slots, named as the models' inputs;
- `README.md`: what the files are and how to run the script.

Every name and string that comes from a .kdl file enters the script as a Python literal
(`py_literal`), never as code; the model and train block names, which also name files and
appear in the script's docstring, must be plain identifiers. The metrics follow
`metric_plan` (transpiler.emit.train.metrics): the plan is a literal too, and its finalize
expressions, which the script evaluates, come from ktrans's metric catalogue and are
checked here (`checked_finalize`) to be arithmetic on the statistics with literal
constants only.
"""

from __future__ import annotations

import ast
import io
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from transpiler import __version__
from transpiler.emit.onnx.builder import OpBuilder
from transpiler.emit.onnx.context import LowerContext
from transpiler.emit.onnx.model import build_model, initial_weights, value_info
from transpiler.emit.onnx.save import PROTOBUF_LIMIT, atomic_write_bytes
from transpiler.emit.onnx.tensors import LTensor
from transpiler.emit.versions import IR_VERSION, OPSET
from transpiler.errors import KdlError, KdlErrors

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
LINE_LENGTH = 88  # ruff's default, so the script is ruff-clean with or without a config
SUPPORTED_CALLBACKS = (
    "EarlyStopping",
    "ReduceLROnPlateau",
    "ModelCheckpoint",
    "CSVLogger",
    "TerminateOnNaN",
    "LearningRateScheduler",
)


def _fail(message: str, hint: str | None = None, span=None):
    raise KdlErrors([KdlError(span, message, hint)])


# ------------------------------------------------------------------ choosing a train block


def pick_train(graph, name: str | None = None):
    """The train block `name` of `graph`, or its only one."""
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
    if len(trains) > 1:
        _fail(
            f"model {graph.name} has {len(trains)} train blocks: {', '.join(trains)}",
            "choose one with --train NAME",
        )
    return next(iter(trains.values()))


# ------------------------------------------------------------------ the evaluation model


class _EvalContext(LowerContext):
    """Inference-mode lowering that also records each weight's spec (for regularization
    penalties in the loss), as training lowering does in `params`."""

    def weight(self, name, transform=None, key="", layer=None):
        full = super().weight(name, transform, key, layer)
        if full not in self.params:
            layer = layer or self.layer
            spec = next(w for w in layer.weights if w.name == name)
            trainable = bool(layer.trainable and spec.trainable)
            self.params[full] = (self.b.initializers[full], trainable, spec)
        return full


def build_eval_model(graph, config, weights) -> onnx.ModelProto:
    """The forward pass in inference mode with the train block's loss and metrics, and no
    update: inputs are the model inputs, `target:<output>` (typed as the training model
    types it: `target_type`) and every weight (`<layer>/<weight>`, as the training model
    names them); outputs `loss`, `loss:<output>` (several losses) and the metric statistics
    `metric:<output>:<name>[:<stat>]` shaped as `metric_shapes` says, as the training
    model's."""
    from transpiler.emit.train.losses import target_type, total_loss
    from transpiler.emit.train.metrics import batch_metrics, metric_shapes

    b = OpBuilder()
    ctx = _EvalContext(b, weights)
    values = {}
    for v in graph.inputs:
        b.unique(v.name)
        values[id(v)] = LTensor(v.name, v.type)
    for node in graph.nodes:
        ctx.layer = node.layer
        b.scope = node.outputs[0].name.split(":")[0]
        outs = node.layer.lower(ctx, [values[id(v)] for v in node.inputs])
        for v, t in zip(node.outputs, outs):
            values[id(v)] = t
    b.scope = ""
    predictions = {name: ctx.logical(values[id(v)]).name for name, v in graph.outputs.items()}
    targets = {name: b.unique(f"target:{name}") for name in config.loss}
    b.scope = "loss"
    loss, per_output = total_loss(b, config, graph, predictions, targets, ctx.params)
    b.scope = "metrics"
    metric_values = batch_metrics(b, config, graph, predictions, targets)
    b.scope = ""

    named = {"loss": loss}
    if len(per_output) > 1:
        named.update({f"loss:{n}": v for n, v in per_output.items()})
    named.update(metric_values)
    shapes = metric_shapes(config, graph)
    outputs = []
    for name, value in named.items():
        b.nodes.append(helper.make_node("Identity", [value], [name], f"{name}/output"))
        shape = list(shapes.get(name, ()))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    for name, target in targets.items():
        inputs.append(value_info(target, target_type(config.loss[name], graph.outputs[name].type)))
    state = [n for n in ctx.params]
    for name in state:
        shape = list(b.initializers[name].shape)
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    constants = [
        onnx.numpy_helper.from_array(a, n) for n, a in b.initializers.items() if n not in state
    ]
    g = helper.make_graph(b.nodes, f"{graph.name}_eval", inputs, outputs, constants)
    proto = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ktrans",
        producer_version=__version__,
        ir_version=IR_VERSION,
    )
    helper.set_model_props(
        proto,
        {"ktrans.model": graph.name, "ktrans.train": config.name, "ktrans.version": __version__},
    )
    return proto


# ------------------------------------------------------------------ weight byte ranges


def weight_offsets(proto: onnx.ModelProto, names: list[str]) -> tuple[bytes, dict]:
    """Serializes `proto` with each weight in `names` stored as little-endian raw_data and
    returns (bytes, {name: [offset, size]}): where each weight's bytes sit in the file, so
    a copy with other values is written by overwriting those ranges."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    tensors = {t.name: t for t in proto.graph.initializer}
    raws = {}
    for name in names:
        t = tensors[name]
        raws[name] = onnx.numpy_helper.to_array(t).astype("<f4").tobytes()
        t.ClearField("float_data")
        t.raw_data = raws[name]
    data = proto.SerializeToString()
    offsets = {}
    for name in names:
        offsets[name] = [_raw_data_offset(data, name, raws[name]), len(raws[name])]
    return data, offsets


def _raw_data_offset(data: bytes, name: str, raw: bytes) -> int:
    """Where the raw_data of the initializer `name` starts in the serialized model.

    A TensorProto is serialized in field order, and one made by numpy_helper.from_array
    has no field between its name (8) and its raw_data (9); so the record holds the name's
    tag, length and bytes, then raw_data's tag and length, then the values."""
    encoded = name.encode()
    head = b"\x42" + _varint(len(encoded)) + encoded + b"\x4a" + _varint(len(raw))
    found = [m.end() for m in re.finditer(re.escape(head), data)]
    found = [at for at in found if data[at : at + len(raw)] == raw]
    if len(found) != 1:
        raise AssertionError(f"cannot locate the bytes of the weight {name}")
    return found[0]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ------------------------------------------------------------------ Python literals


def py_str(s: str) -> str:
    """A string literal as ruff formats it: double quotes, unless the string holds more
    double than single quotes; other characters escaped as repr() escapes them."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    body = []
    for ch in s:
        if ch == quote:
            body.append("\\" + ch)
        elif ch in "'\"":
            body.append(ch)
        else:
            body.append(repr(ch)[1:-1])
    return quote + "".join(body) + quote


def py_literal(value, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`value` (None, bool, int, float, str, list, tuple, dict with str keys) as Python
    source, laid out as `ruff format` lays it out: on one line when `prefix`, the value
    and `suffix` fit at `indent`, else one item per line with a trailing comma."""
    flat = _flat(value)
    if indent + len(prefix) + len(flat) + len(suffix) <= LINE_LENGTH or not _is_container(value):
        line = " " * indent + prefix + flat + suffix
        if len(line) > LINE_LENGTH:  # E501 where enabled; RUF100 where it is not
            line += "  # noqa: E501, RUF100"
        return line
    pad = " " * indent
    if isinstance(value, dict):
        open_, close = "{", "}"
        items = [py_literal(v, indent + 4, f"{py_str(k)}: ", ",") for k, v in value.items()]
    else:
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [py_literal(v, indent + 4, "", ",") for v in value]
    return "\n".join([pad + prefix + open_, *items, pad + close + suffix])


def _is_container(value) -> bool:
    return isinstance(value, (list, tuple, dict)) and len(value) > 0


def _flat(value) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be strings, got {k!r}")
        return "{" + ", ".join(f"{py_str(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_flat(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _flat(value.item())
    raise TypeError(f"cannot write {type(value).__name__} as a Python literal")


# ------------------------------------------------------------------ what the script knows


def _plain(value):
    """Specs (ScheduleSpec, dataclasses) and tuples as plain dicts and lists."""
    if hasattr(value, "name") and hasattr(value, "kwargs"):
        return {"name": value.name, **{k: _plain(v) for k, v in value.kwargs.items()}}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _log_names(graph, config, tm) -> tuple[dict, list[dict]]:
    """({log key: training-model output} for the losses, the metric plan): Keras 3's
    keys, `loss` and `<output>_loss` with several losses; the metrics' keys and how to
    compute them are `metric_plan`'s (module docstring of transpiler.emit.train.metrics),
    checked against the training model's outputs."""
    from transpiler.emit.train.metrics import metric_plan

    losses = {"loss": "loss"}
    for out in tm.losses[1:]:
        losses[f"{out.split(':', 1)[1]}_loss"] = out
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


# A finalize expression may use these besides its statistics and the helpers' functions.
FINALIZE_BUILTINS = ("np", "float")
_FINALIZE_NODES = (
    ast.Expression,
    ast.Call,
    ast.keyword,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


def finalize_helper_names() -> list[str]:
    """The functions FINALIZE_HELPERS defines (ktrans's own numpy source, which the script
    includes verbatim): it must define functions and nothing else."""
    from transpiler.emit.train.metrics import FINALIZE_HELPERS

    names = []
    for node in ast.parse(FINALIZE_HELPERS).body:
        if not isinstance(node, ast.FunctionDef):
            raise AssertionError("FINALIZE_HELPERS must hold only function definitions")
        names.append(node.name)
    return names


def checked_finalize(expression: str, variables: list[str]) -> str:
    """`expression` if it is a finalize expression as ktrans's metric catalogue writes
    them: arithmetic and calls of `np.<function>`, `float` and the helpers on the
    statistics' `variables`, with literal constants only (so a string from a .kdl file,
    such as an AUC curve, can only be a string constant). The script evaluates these;
    anything else raises AssertionError, a bug in ktrans."""
    allowed = {*FINALIZE_BUILTINS, *finalize_helper_names(), *variables}
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        ok = isinstance(node, _FINALIZE_NODES)
        if isinstance(node, ast.Name):
            ok = node.id in allowed
        elif isinstance(node, ast.Attribute):
            base = node.value
            ok = isinstance(base, ast.Name) and base.id == "np" and not node.attr.startswith("_")
        elif isinstance(node, ast.Constant):
            ok = node.value is None or isinstance(node.value, (bool, int, float, str))
        elif isinstance(node, ast.keyword):
            ok = node.arg is not None
        if not ok:
            raise AssertionError(
                f"the finalize expression {expression!r} is not one ktrans writes: "
                f"it holds {ast.dump(node)}"
            )
    return expression


def _directions(losses: dict, plan: list[dict]) -> dict[str, str]:
    """The direction, "min" or "max", of every log key (for mode=auto)."""
    out = dict.fromkeys(losses, "min")
    for entry in plan:
        out[entry["key"]] = "max" if entry["direction"] == "up" else "min"
    return out


def _callbacks(config, directions: dict) -> list[dict]:
    out = []
    for cb in config.callbacks:
        if cb.name not in SUPPORTED_CALLBACKS:
            _fail(
                f"the callback {cb.name} is not supported by generated training scripts",
                f"supported: {', '.join(SUPPORTED_CALLBACKS)}",
                config.span,
            )
        entry = {"name": cb.name, **_plain(cb.kwargs)}
        if entry.get("mode") == "auto":
            base = entry["monitor"].removeprefix("val_")
            entry["mode"] = directions.get(base, "min")
        out.append(entry)
    return out


def script_settings(graph, config, tm, seed: int, files: dict, offsets: dict) -> dict:
    """Everything the template needs, as plain data."""
    from transpiler.emit.train.losses import SPARSE
    from transpiler.emit.train.metrics import FINALIZE_HELPERS

    for label, name in (("model", graph.name), ("train block", config.name)):
        if not IDENTIFIER.match(name):
            _fail(f"the {label} name {name!r} is not a plain identifier", span=config.span)
    losses, plan = _log_names(graph, config, tm)
    directions = _directions(losses, plan)
    callbacks = _callbacks(config, directions)
    lr = _plain(config.optimizer.kwargs.get("learning_rate", 0.001))
    outputs = {}
    for name, spec in config.loss.items():
        outputs[name] = {"target": f"target:{name}", "loss": spec.name}
        if spec.name in SPARSE:  # int64 class ids, not one-hot rows
            outputs[name]["classes"] = graph.outputs[name].type.shape[-1]
            outputs[name]["ignore_class"] = spec.kwargs.get("ignore_class")
    metric_plan = [
        {key: entry[key] for key in ("key", "stats", "combine", "finalize")} for entry in plan
    ]
    ema = {}
    if config.optimizer.kwargs.get("use_ema"):
        ema = {p: f"slot:{p}:average" for p in tm.params if f"slot:{p}:average" in tm.slots}
    fit = {
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
    uses_schedule = isinstance(lr, dict) or any(
        c["name"] == "LearningRateScheduler" for c in callbacks
    )
    return {
        "model": graph.name,
        "train": config.name,
        "version": __version__,
        "constants": {
            "MODEL": graph.name,
            "TRAIN_BLOCK": config.name,
            "SOURCE": str(graph.file) if getattr(graph, "file", None) else None,
            "KTRANS_VERSION": __version__,
            "SEED": int(seed),
            "FILES": files,
            "INPUTS": [v.name for v in graph.inputs],
            "OUTPUTS": outputs,
            "LOSSES": losses,
            "METRIC_PLAN": metric_plan,
            "OPTIMIZER": config.optimizer.name,
            "LEARNING_RATE": lr,
            "FIT": fit,
            "CALLBACKS": callbacks,
            "EMA_AVERAGES": ema,
        },
        "finalize_helpers": FINALIZE_HELPERS.strip("\n"),
        "finalize_helper_names": finalize_helper_names(),
        "export_offsets": offsets,
        "uses_schedule": uses_schedule,
        "callback_names": sorted({c["name"] for c in callbacks}),
    }


def render_script(settings: dict) -> str:
    import jinja2

    source = resources.files("transpiler.templates").joinpath("train_script.py.j2").read_text()
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["literal"] = lambda value, name: py_literal(value, 0, f"{name} = ")
    return env.from_string(source).render(**settings)


# ------------------------------------------------------------------ the bundle


def _readme(model: str, train: str, files: dict) -> str:
    return f"""# Training bundle for {model} (train block `{train}`)

Generated by ktrans {__version__}. Run it with Python 3.10+, numpy and onnxruntime
(onnxruntime-gpu for `--device cuda`); neither ktrans nor the `onnx` package is needed.

```sh
python {files["script"]} --data DATA.npz [--epochs N] [--batch-size N] [--device cpu|cuda]
python {files["script"]} --help      # every flag, the data format, the outputs
```

| file | what |
|---|---|
| `{files["script"]}` | the training loop |
| `{files["train"]}` | one training step: batch, step, lr, state in; loss, metrics, new state out |
| `{files["eval"]}` | loss and metrics in inference mode, for validation and test data |
| `{files["inference"]}` | the inference model with the initial weights |
| `{files["init"]}` | the initial parameters, buffers and optimizer slots |

The script writes into `--out` (default: this directory) `history.csv`, `history.json`,
`checkpoint.npz` (every epoch, and on Ctrl-C; continue with `--resume`),
`results.json` and `{model}.trained.onnx`, the inference model with the trained weights.
"""


def _check_same_weights(graph, config, state: dict, eval_proto, inference) -> None:
    """The evaluation and inference models must hold the weights as the training model
    does (same names, layouts and values): the script feeds its state to the first and
    writes it into the second. A layer whose inference form folds its weights (as
    BatchNormalization on an axis ONNX's op cannot take) breaks this."""
    data = {v.name for v in graph.inputs} | {f"target:{n}" for n in config.loss}
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
        _fail(
            f"cannot generate a training script for {graph.name}: the layer '{layer}' "
            f"stores its weights differently for inference ({odd[0]})",
            "training bundles need layers whose inference form uses the training weights",
            config.span,
        )


def write_training_bundle(graph, config, out_dir, seed: int = 0) -> list[Path]:
    """Writes the training bundle of `graph` trained as `config` into `out_dir` (created if
    missing); returns the paths written, the script first."""
    from transpiler.emit.train.model import build_training_model

    out = Path(out_dir)
    name = graph.name
    if not IDENTIFIER.match(name):
        _fail(f"the model name {name!r} is not a plain identifier")
    weights = initial_weights(graph, seed)
    try:
        tm = build_training_model(graph, config, seed=seed, weights=weights)
        eval_proto = build_eval_model(graph, config, weights)
    except NotImplementedError as e:
        _fail(f"cannot generate a training script for {name}: {e}", span=config.span)
    inference = build_model(graph, weights=weights, source=str(getattr(graph, "file", "")))

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
    }
    settings = script_settings(graph, config, tm, seed, files, offsets)
    script = render_script(settings)

    init = io.BytesIO()
    np.savez(init, **{**tm.params, **tm.buffers, **tm.slots})
    out.mkdir(parents=True, exist_ok=True)
    written = [
        atomic_write_bytes(out / files["script"], script.encode()),
        atomic_write_bytes(out / files["train"], tm.proto.SerializeToString()),
        atomic_write_bytes(out / files["eval"], eval_proto.SerializeToString()),
        atomic_write_bytes(out / files["inference"], inference_bytes),
        atomic_write_bytes(out / files["init"], init.getvalue()),
        atomic_write_bytes(out / "README.md", _readme(name, config.name, files).encode()),
    ]
    return written


def codegen_train(graph, output: str | None, train: str | None = None, seed: int = 0) -> str:
    """`ktrans codegen --target train`: the bundle into `output` (default
    `<Model>_train/`); returns the line to print."""
    out = Path(output or f"{graph.name}_train")
    paths = write_training_bundle(graph, pick_train(graph, train), out, seed=seed)
    return f"wrote {out}/ ({', '.join(p.name for p in paths)}); run: python {paths[0]} --data D"
