"""Keras metrics as per-batch statistics, plus the plan that turns them into what Keras logs.

A Keras metric is state accumulated over an epoch (or an evaluation) and read at the end
(`result()`); ONNX gives one batch at a time. So each metric outputs its batch statistics,
and `metric_plan` tells the training loop how to add batches up and finish.

**Training-model outputs** (all float32):

- mean metrics (accuracies, mse, mae, mape, rmse): one scalar `metric:<output>:<name>`, the
  batch mean of the per-sample values (for rmse, of the squared error);
- confusion metrics (precision, recall, auc): one output per statistic,
  `metric:<output>:<name>:tp` (and `:fp`, `:tn`, `:fn` as needed), counts per threshold,
  shaped `[thresholds]`, or `[thresholds, labels]` for `auc(multi_label=true)`.

`<name>` is the Keras log key without the output prefix: the metric's log name, with
`weighted_` for a `weighted_metrics` entry whose name is taken and `_1`, `_2` for repeats,
as Keras 3 names them. `batch_metrics` returns {output name: value name}; the model
declares each output with its shape from `metric_shapes(config, graph)` (`()`, `(T,)`,
`(T, L)`), not as a scalar.

**The plan**, `metric_plan(config)`: one dict per logged metric, in Keras's log order::

    {
        "output": "output",              # the model output it measures
        "key": "precision",              # Keras's log key ("val_" + key on validation);
                                         # "<output>_<name>" for models with several outputs
        "direction": "up",               # "up": higher is better, "down": lower
        "stats": {"tp": "metric:output:precision:tp",   # variable -> training-model output
                  "fp": "metric:output:precision:fp"},
        "combine": "sum",                # how batches add up, see below
        "finalize": "first_or_list(divide_no_nan(tp, tp + fp))",   # the logged value
    }

- `combine == "mean"`: each statistic is a batch mean; over batches
  `sum(value_b * batch_size_b) / sum(batch_size_b)` (Keras's Mean metrics count samples);
- `combine == "sum"`: statistics add up elementwise over batches (as float64 arrays).

Keras resets metrics at the start of every epoch and of every evaluation, and its
progress bar and `logs` show the running result: combine the batches seen so far and
finalize. `finalize` is a Python expression over the combined statistics (numpy float64
arrays, or floats for "mean") by their variable names, `np` (numpy), `float` and the
helpers of the bundle runtime's finalize module (templates/ktrans_runtime/finalize.py,
which checks the expressions too); it evaluates to a float, or a list of floats where
Keras logs a vector (precision/recall with several thresholds). `evaluate_plan` is the
reference of all this.

Metrics of an output without a loss are left out (plan and outputs): the training model
has no target for it, where Keras would log them when given its labels.

This module names and shapes the outputs and builds the plan; the per-batch statistic
emitters themselves (the `METRICS` registry) are in transpiler.emit.train.metric_stats.
"""

from __future__ import annotations

import numpy as np

from transpiler.emit.train.metric_stats import FINISH, METRICS, STATS, auc_thresholds
from transpiler.training.metrics import masked_metric_error

# ---------------------------------------------------------------- the model's outputs


def log_names(config) -> list[tuple[str, object, str, str]]:
    """(output, MetricSpec, Keras log key, output-name suffix) for every metric, in Keras's
    order: `metrics` then `weighted_metrics`, output by output (callbacks.log_keys)."""
    from transpiler.training.callbacks import metric_keys

    many = len(config.outputs) > 1
    return [
        (o, m, name, name[len(f"{o}_") :] if many else name)
        for o, m, name in metric_keys(config.outputs, config.metrics, config.weighted_metrics)
    ]


def _stat_names(output: str, suffix: str, result) -> dict[str, str]:
    base = f"metric:{output}:{suffix}"
    if isinstance(result, dict):
        return {stat: f"{base}:{stat}" for stat in result}
    return {"value": base}


def batch_metrics(b, config, graph, predictions, targets) -> dict[str, str]:
    """{training-model output name: value name} for every metric statistic (see the
    module docstring for names and shapes)."""
    out = {}
    for output, spec, _, suffix in log_names(config):
        if output not in targets:
            continue
        fn = METRICS.get(spec.name)
        if fn is None:
            raise NotImplementedError(f"the metric {spec.name} is not emitted yet")
        _check_mask(b, spec.name, output, predictions[output])
        shape = graph.outputs[output].type.shape
        result = fn(b, predictions[output], targets[output], spec.kwargs, shape)
        names = _stat_names(output, suffix, result)
        values = result if isinstance(result, dict) else {"value": result}
        for stat, name in names.items():
            out[name] = values[stat]
    return out


def _check_mask(b, metric: str, output: str, prediction: str) -> None:
    """A metric on an output with a Keras mask must ignore the mask (`ktrans check`
    reports the pairing at the metric; this guards the emitter)."""
    problem = masked_metric_error(metric, output) if prediction in getattr(b, "masks", {}) else None
    if problem is not None:
        raise NotImplementedError(f"{problem.message}; {problem.hint}")


def _thresholds_of(spec) -> int:
    """How many thresholds a confusion metric counts at."""
    kw = spec.kwargs
    if spec.name == "auc":
        return len(auc_thresholds(kw)[0])
    given = kw.get("thresholds")
    return len(given) if isinstance(given, (list, tuple)) else 1


def metric_shapes(config, graph) -> dict[str, tuple]:
    """{training-model metric output: its static shape}: () for mean metrics, (T,) for
    confusion counts, (T, labels) for auc(multi_label=true). Declare outputs with these."""
    out = {}
    for output, spec, _, suffix in log_names(config):
        if output not in config.loss:
            continue
        stats = STATS.get(spec.name)
        if not stats:
            out[f"metric:{output}:{suffix}"] = ()
            continue
        shape: tuple = (_thresholds_of(spec),)
        if spec.name == "auc" and spec.kwargs.get("multi_label"):
            shape = (*shape, graph.outputs[output].type.shape[-1])
        for stat in stats:
            out[f"metric:{output}:{suffix}:{stat}"] = shape
    return out


def metric_plan(config) -> list[dict]:
    """How the training loop turns the metric outputs into Keras's logs (module docstring)."""
    plan = []
    for output, spec, key, suffix in log_names(config):
        if output not in config.loss:
            continue  # Keras computes no metrics for outputs it has no targets for
        if spec.name not in METRICS:
            raise NotImplementedError(f"the metric {spec.name} is not emitted yet")
        combine, finalize = FINISH[spec.name](spec.kwargs)
        stats = STATS.get(spec.name)
        plan.append(
            {
                "output": output,
                "key": key,
                "direction": spec.direction,
                "stats": _stat_names(output, suffix, dict.fromkeys(stats) if stats else None),
                "combine": combine,
                "finalize": finalize,
            }
        )
    return plan


def evaluate_plan(plan: list[dict], batches: list[dict], sizes: list[int]) -> dict[str, object]:
    """The reference loop: `batches` are the training (or evaluation) model's outputs per
    batch, `sizes` the batch sizes; returns {log key: value} as Keras logs it."""
    from transpiler.templates.ktrans_runtime.finalize import compile_finalize

    logs = {}
    total = float(sum(sizes))
    for entry in plan:
        combined = {}
        for var, name in entry["stats"].items():
            if entry["combine"] == "mean":
                acc = sum(float(batch[name]) * n for batch, n in zip(batches, sizes))
                combined[var] = acc / total if total else 0.0
            else:
                combined[var] = sum(np.asarray(batch[name], np.float64) for batch in batches)
        logs[entry["key"]] = compile_finalize(entry["finalize"], list(combined))(combined)
    return logs
