"""Batches read ahead of the training step on a background thread.

    with Prefetcher(dataset, batches_of_rows, depth=2) as batches:
        for rows, batch in batches:
            step(batch)

The thread calls `dataset.take(rows)` for each entry of `batches_of_rows` in order and
keeps up to `depth` batches ready, so reading files (Pillow and numpy release the GIL
while they decode and copy) overlaps the step. Batches come out in the order given.

An error while reading (a `DataError`, anything) is raised in the consuming thread when
the loop reaches that batch, with its own type and message. Leaving the `with` block
(the loop ended, broke off, raised, or Ctrl-C arrived) stops the thread: it finishes at
most the batch it is reading and exits; nothing is left running. The thread is a daemon,
so a process that exits without closing never waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_DONE = object()
_POLL = 0.1  # seconds: how often a blocked thread looks at the stop flag


class Prefetcher:
    def __init__(self, dataset, batches: Iterable, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.dataset = dataset
        self.batches = batches
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="ktrans-prefetch", daemon=True)
        self.started = False

    # the reading thread

    def _put(self, item) -> bool:
        """Puts `item`, waiting for room; False if asked to stop meanwhile."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for rows in self.batches:
                if self.stop.is_set():
                    return
                if not self._put((rows, self.dataset.take(rows))):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)
            return
        self._put(_DONE)

    # the consumer

    def __enter__(self) -> Prefetcher:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.thread.start()

    def __iter__(self) -> Iterator:
        self.start()
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                self.close()
                raise item
            yield item

    def close(self) -> None:
        """Stops the thread and waits for it (it ends after the batch it is reading)."""
        self.stop.set()
        while True:  # make room, so a thread waiting to put sees the flag
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        if self.started and self.thread is not threading.current_thread():
            self.thread.join()
