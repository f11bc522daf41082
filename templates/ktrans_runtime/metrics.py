"""The logs of an epoch or an evaluation, as Keras's metrics hold them.

An engine gives, per batch, the losses and each metric's statistics (a batch mean, or
confusion counts); the metric plan (one entry per logged metric, in Keras's log order,
written by ktrans into the script) says how batches add up and how the logged value
follows:

    {"key": "precision",                                   # the log key
     "stats": {"tp": "metric:output:precision:tp", ...},   # variable -> engine output
     "combine": "sum",          # "mean": batch means weighted by batch size (Keras's
                                #  Mean metrics); "sum": counts added up (float64)
     "finalize": "first_or_list(divide_no_nan(tp, tp + fp))"}   # finalize.py

`Averages` is reset at the start of every epoch and evaluation and updated by every
batch; `result()` is the logs so far, as Keras's progress bar and callbacks see them.
`evaluate` runs an engine's inference-mode pass over a dataset.
"""

from __future__ import annotations

import numpy as np

from .data import steps_per_epoch
from .finalize import compile_finalize


class Averages:
    """`losses`: {log key: engine output} (batch means); `plan`: the metric plan."""

    def __init__(self, losses: dict[str, str], plan: list[dict]) -> None:
        self.losses = dict(losses)
        self.plan = plan
        self.means = list(self.losses.values())  # outputs averaged over the batches
        self.sums: list[str] = []  # outputs added up
        for entry in plan:
            outputs = self.means if entry["combine"] == "mean" else self.sums
            outputs.extend(entry["stats"].values())
        self.finalizers = [compile_finalize(e["finalize"], list(e["stats"])) for e in plan]
        self.reset()

    def reset(self) -> None:
        self.totals = dict.fromkeys(self.means, 0.0)  # value times rows, added up
        self.counts = {output: np.zeros(()) for output in self.sums}
        self.count = 0  # rows

    def update(self, values: dict, rows: int) -> None:
        """Adds a batch of `rows` rows: `values` are the engine's outputs for it."""
        for output in self.means:
            self.totals[output] += float(values[output]) * rows
        for output in self.sums:
            self.counts[output] = self.counts[output] + np.asarray(values[output], "f8")
        self.count += rows

    def _combined(self, output: str):
        if output in self.counts:
            return self.counts[output]
        return self.totals[output] / self.count

    def result(self) -> dict:
        """{log key: value}: floats, or lists of floats for metrics that log a list."""
        if not self.count:
            return {}
        logs = {key: self._combined(output) for key, output in self.losses.items()}
        for entry, finalize in zip(self.plan, self.finalizers):
            logs[entry["key"]] = finalize(
                {var: self._combined(out) for var, out in entry["stats"].items()}
            )
        return logs

    def state(self) -> dict:
        """A JSON-able copy (for checkpoints)."""
        counts = {output: value.tolist() for output, value in self.counts.items()}
        return {"totals": self.totals, "counts": counts, "count": self.count}

    def load(self, state: dict) -> None:
        if set(state["totals"]) != set(self.totals) or set(state["counts"]) != set(self.counts):
            raise ValueError("the checkpoint's metric state is not this model's")
        self.totals = {k: float(v) for k, v in state["totals"].items()}
        self.counts = {o: np.asarray(v, "f8") for o, v in state["counts"].items()}
        self.count = int(state["count"])


def evaluate(engine, data, batch_size: int, averages: Averages, max_steps=None, stop=None):
    """Loss and metrics of `engine` over `data` in inference mode (its `evaluate`), or
    None if `stop` (an Interrupt) was set on the way."""
    averages.reset()
    for i in range(steps_per_epoch(data.size, batch_size, max_steps)):
        rows = slice(i * batch_size, min((i + 1) * batch_size, data.size))
        averages.update(engine.evaluate(data.take(rows)), rows.stop - rows.start)
        if stop is not None and stop.signum:
            return None
    return averages.result()
