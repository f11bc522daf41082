"""The files a training bundle holds for its report and for `ktrans evaluate`/`predict`,
written at codegen time beside the script:

- `<Model>.svg`: the model diagram (the viz module's; skipped with a note when Graphviz's
  `dot` is missing: a bundle does not need it to train);
- `<Model>.summary.txt`: the Keras summary table;
- `<Model>.eval.json`: what `<Model>.eval.onnx` computes and how to read it: the model's
  inputs, the trained outputs (target input, loss, classes of sparse targets), the
  losses' log keys with the outputs holding them, the metric plan (statistics, how
  batches combine, the finalize expression: checked when read back), the fit settings
  evaluation uses (batch sizes), and the train block's `data { }` section.

Evaluation (`transpiler.evaluate_run`) and the report (ktrans_runtime.report) read them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transpiler.emit.file_names import file_stem
from transpiler.emit.onnx.save import atomic_write_bytes

EVAL_FORMAT = 1


def eval_settings(graph, config, settings: dict) -> dict:
    """The contents of `<Model>.eval.json`, from the script's settings (its literals,
    `settings["s"]`: FEEDS describes the inputs and the trained outputs' targets)."""
    constants = settings["s"]
    inputs, outputs = [], {}
    for name, feed in constants["FEEDS"].items():
        if "loss" not in feed:
            inputs.append(name)
            continue
        outputs[feed["array"]] = {"target": name, "loss": feed["loss"]}
        if "classes" in feed:  # sparse class ids
            outputs[feed["array"]].update(
                classes=feed["classes"], ignore_class=feed["ignore_class"]
            )
    return {
        "format": EVAL_FORMAT,
        "model": constants["MODEL"],
        "train_block": constants["TRAIN_BLOCK"],
        "files": constants["FILES"],
        "inputs": inputs,
        "outputs": outputs,
        "losses": constants["LOSSES"],
        "loss_names": {name: spec.name for name, spec in config.loss.items()},
        "metric_plan": constants["METRIC_PLAN"],
        "optimizer": constants["OPTIMIZER"],
        "learning_rate": constants["LEARNING_RATE"],
        "fit": constants["FIT"],
        "data": constants.get("DATA") or {},
    }


def diagram_svg(graph) -> bytes | None:
    """The model diagram as SVG, or None (with a note) when Graphviz cannot draw it."""
    import graphviz

    from transpiler.viz.model_graph import model_digraph

    try:
        return model_digraph(graph, show_params=True).pipe(format="svg")
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as e:
        print(f"note: no model diagram in the bundle: {e}", file=sys.stderr)
        return None


def write_bundle_extras(graph, config, settings: dict, out: Path) -> list[Path]:
    """Writes the evaluation settings, the summary table and the diagram into `out`."""
    return [write_eval_settings(graph, config, settings, out), *write_report_files(graph, out)]


def write_eval_settings(graph, config, settings: dict, out: Path) -> Path:
    """Writes `<Model>.eval.json` into `out`."""
    evaluation = json.dumps(eval_settings(graph, config, settings), indent=1) + "\n"
    return atomic_write_bytes(out / f"{file_stem(graph.name)}.eval.json", evaluation.encode())


def write_report_files(graph, out: Path) -> list[Path]:
    """Writes the summary table and the diagram (the report's) into `out`."""
    from transpiler.summary import render_summary

    name = file_stem(graph.name)
    summary = (render_summary(graph) + "\n").encode()
    written = [atomic_write_bytes(out / f"{name}.summary.txt", summary)]
    svg = diagram_svg(graph)
    if svg is not None:
        written.append(atomic_write_bytes(out / f"{name}.svg", svg))
    return written
