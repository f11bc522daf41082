"""Initial weights drawn on worker threads while the graph is lowered and written.

Drawing ResNet-50's 25.6 M initial values takes about as long as parsing, checking and
lowering the whole model. numpy's generators release the GIL while they fill an array, so
the draws run on the other cores: `ktrans build` lowers the graph and streams the file
while the weights arrive. A weight still in flight is a `PendingArray`: its shape and
dtype are known at once (enough for the ONNX tensor header), its values when `result()`
returns. The values are those a draw on the main thread gives: each weight has its own
random stream, and an iid draw fills the array in C order whatever its shape.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

#: Weights smaller than this are drawn on the main thread when first needed: a task
#: handed to a worker costs more than drawing a bias.
MIN_PREFETCH_SIZE = 1 << 16


class PendingArray:
    """A float32 array being drawn on a worker thread, reshaped to `shape` on arrival."""

    dtype = np.dtype(np.float32)

    def __init__(self, future: Future, shape: tuple[int, ...]) -> None:
        self._future = future
        self.shape = tuple(shape)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize

    def result(self) -> np.ndarray:
        return self._future.result().reshape(self.shape)


def resolve(array) -> np.ndarray:
    """The values of an array that may still be pending."""
    return array.result() if isinstance(array, PendingArray) else array


class DrawPool:
    """Flat float32 draws started at once, one task per weight, in submission order."""

    def __init__(self) -> None:
        workers = max(1, min(4, os.cpu_count() or 1))
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="ktrans-draw")
        self._futures: dict[tuple[str, str], Future] = {}

    def submit(self, key: tuple[str, str], draw: Callable[[], np.ndarray]) -> None:
        self._futures[key] = self._executor.submit(draw)

    def done_submitting(self) -> None:
        # submitted draws still run; the threads exit once the queue is empty
        self._executor.shutdown(wait=False)

    def take(self, key: tuple[str, str]) -> Future | None:
        """The draw for `key` (once: a second use draws again on the main thread)."""
        return self._futures.pop(key, None)

    def cancel(self) -> None:
        """Drops the draws not started yet (the build failed; nobody will read them)."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
