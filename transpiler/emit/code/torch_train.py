"""What the PyTorch training script knows about a train block, as plain data: the losses,
the optimizer, the metrics and the weights' regularizers, written into the script as
literals and read by the bundle runtime's torch modules (templates/ktrans_runtime:
torch_losses, torch_optim, torch_metrics).

    LOSS = loss_specs(config)           # {output: {"name", "weight", "kwargs"}}
    OPTIMIZER = optimizer_spec(config)  # {"name": "Adam", "learning_rate": ..., ...}
    METRIC_PLAN = metric_specs(config)  # the metric plan, with what torch_metrics needs
    REGULARIZERS = regularizer_specs(graph)  # {"<layer>/<weight>": [l1, l2]}

A loss's keyword arguments are those that differ from Keras's defaults ("kwargs" is
left out when none does; the runtime's loss functions default to Keras's): the script
says what this model sets, not the catalogue. A metric's `stats` name the values the
engine reports, as the metric plan (transpiler.emit.train.metrics) names them, so both
engines' scripts share the plan and the runtime's averaging.
"""

from __future__ import annotations

from transpiler.emit.code.train_literals import plain_data


def set_kwargs(spec) -> dict:
    """The loss's keyword arguments whose values are not Keras's defaults."""
    from transpiler.training.losses import LOSSES

    entry = LOSSES.find(spec.name)
    defaults = {arg.name: arg.default for arg in entry.args} if entry else {}
    kwargs = plain_data(spec.kwargs)
    return {k: v for k, v in kwargs.items() if k not in defaults or defaults[k] != v}


def loss_specs(config) -> dict[str, dict]:
    """{output: {"name", "weight", "kwargs" (only when some differ from Keras's
    defaults)}} for every output with a loss, in the model's output order."""
    out = {}
    for output in config.outputs:
        if output not in config.loss:
            continue
        spec = config.loss[output]
        out[output] = {"name": spec.name, "weight": float(config.loss_weights.get(output, 1.0))}
        if set_kwargs(spec):
            out[output]["kwargs"] = set_kwargs(spec)
    return out


#: options that change nothing at these values (Keras's defaults; torch_optim reads each
#: with kw.get, so an absent one is off)
IDLE = {
    "use_ema": False,
    "loss_scale_factor": None,
    "momentum": 0.0,
    "nesterov": False,
    "centered": False,
    "amsgrad": False,
}


def optimizer_spec(config) -> dict:
    """{"name": the Keras class, and every keyword argument that is set}: None (an
    option not used) is left out, and the EMA's settings without use_ema."""
    spec = config.optimizer
    kwargs = {k: v for k, v in plain_data(spec.kwargs).items() if v is not None}
    if not kwargs.get("use_ema"):
        kwargs.pop("ema_momentum", None)
    kwargs = {k: v for k, v in kwargs.items() if k not in IDLE or IDLE[k] != v}
    return {"name": spec.name, **kwargs}


def metric_specs(config) -> list[dict]:
    """The metric plan (transpiler.emit.train.metrics: "key", "stats", "combine",
    "finalize"), each entry with what the torch engine computes it from: "metric" (the
    canonical name), "output" and "kwargs" (left out when empty)."""
    from transpiler.emit.train.metrics import log_names, metric_plan

    plan = metric_plan(config)
    logged = [entry for entry in log_names(config) if entry[0] in config.loss]
    out = []
    for (output, spec, key, _), entry in zip(logged, plan, strict=True):
        assert entry["key"] == key and entry["output"] == output
        kwargs = {k: plain_data(v) for k, v in spec.kwargs.items() if k != "name"}
        plain_entry = {k: entry[k] for k in ("key", "stats", "combine", "finalize")}
        out.append({**plain_entry, "metric": spec.name, "output": output})
        if kwargs:
            out[-1]["kwargs"] = kwargs
    return out


def regularizer_specs(graph) -> dict[str, list[float]]:
    """{"<layer>/<weight>": [l1, l2]} for each trainable weight with a regularizer (Keras
    adds no penalty for a frozen weight)."""
    out = {}
    for layer in graph.layers:
        for weight in layer.weights or []:
            reg = weight.regularizer
            if reg is None or not (layer.trainable and weight.trainable):
                continue
            if reg.l1 or reg.l2:
                out[f"{layer.name}/{weight.name}"] = [float(reg.l1), float(reg.l2)]
    return out
