"""Keras-style progress on stderr: a bar updated in place on a terminal (verbose 1), one
line per epoch when not a terminal (verbose 2), nothing at verbose 0. Log keys come from
the .kdl file (a metric's `name="..."`), so lines are escaped (console.escape)."""

from __future__ import annotations

import sys
import time

from .console import escape


def format_logs(logs: dict) -> str:
    """Logs as Keras shows them: ` - accuracy: 0.9123 - loss: 0.2871`; a list as
    `[0.9000, 0.8500]`."""
    parts = []
    for key in sorted(logs):
        value = logs[key]
        if isinstance(value, list):
            shown = "[" + ", ".join(format_value(v) for v in value) + "]"
        else:
            shown = format_value(value)
        parts.append(f" - {key}: {shown}")
    return "".join(parts)


def format_value(value: float) -> str:
    return f"{value:.4f}" if abs(value) > 1e-3 or value == 0 else f"{value:.4e}"


class Progress:
    def __init__(self, verbose, stream=None) -> None:
        stream = stream or sys.stderr
        if verbose == "auto":
            verbose = 1
        if verbose == 1 and not stream.isatty():
            verbose = 2
        self.verbose, self.stream = int(verbose), stream
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.done_char, self.todo_char = ("━", "─") if encoding == "utf8" else ("=", ".")
        self.width = 0
        self.steps = self.first = 0
        self.started = self.shown = time.perf_counter()

    def start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        """An epoch of `steps` steps begins, `done` of them done (a resumed run)."""
        self.steps, self.first = steps, done
        self.started = self.shown = time.perf_counter()
        self.width = 0
        if self.verbose:
            self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")
            self.stream.flush()

    def _per_step(self, done: int) -> float:
        return (time.perf_counter() - self.started) / max(done - self.first, 1)

    def _bar(self, done: int) -> str:
        digits = len(str(self.steps))
        filled = 20 * done // max(self.steps, 1)
        bar = self.done_char * filled + self.todo_char * (20 - filled)
        return f"{done:>{digits}}/{self.steps} {bar}"

    def update(self, done: int, result) -> None:
        """`result()` gives the logs so far (called only when they are shown)."""
        now = time.perf_counter()
        if self.verbose != 1 or now - self.shown < 0.1:
            return
        self.shown = now
        per_step = self._per_step(done)
        eta = per_step * (self.steps - done)
        text = f"{self._bar(done)} {eta:.0f}s {per_step * 1e3:.0f}ms/step"
        self._line(text + format_logs(result()))

    def end(self, logs: dict) -> None:
        elapsed = time.perf_counter() - self.started
        timing = f"{elapsed:.0f}s {self._per_step(self.steps) * 1e3:.0f}ms/step"
        if self.verbose == 1:
            self._line(f"{self._bar(self.steps)} {timing}{format_logs(logs)}")
            self.stream.write("\n")
        elif self.verbose == 2:
            count = f"{self.steps}/{self.steps} - {timing.replace(' ', ' - ')}"
            self.stream.write(escape(f"{count}{format_logs(logs)}") + "\n")
        self.stream.flush()

    def _line(self, text: str) -> None:
        text = escape(text)
        self.stream.write("\r" + text + " " * max(self.width - len(text), 0))
        self.stream.flush()
        self.width = len(text)
