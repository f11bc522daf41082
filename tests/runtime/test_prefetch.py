"""The prefetching thread: batches in order, errors raised where the loop reaches them,
and no thread left behind however the loop ends."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from transpiler.templates.ktrans_runtime.data_errors import DataError
from transpiler.templates.ktrans_runtime.feeds import ArrayDataset
from transpiler.templates.ktrans_runtime.prefetch import Prefetcher


class Slow(ArrayDataset):
    """Takes `delay` seconds per batch; fails at batch `fail_at`."""

    def __init__(self, arrays, delay=0.0, fail_at=None):
        super().__init__(arrays)
        self.delay, self.fail_at, self.taken = delay, fail_at, 0

    def take(self, rows):
        if self.taken == self.fail_at:
            raise DataError(f"bad.png: cannot read batch {self.taken}")
        self.taken += 1
        time.sleep(self.delay)
        return super().take(rows)


def batches(n, size=4):
    return [np.arange(i * size, (i + 1) * size) for i in range(n)]


def no_prefetch_threads():
    return not [t for t in threading.enumerate() if t.name == "ktrans-prefetch"]


def test_batches_come_in_order():
    data = Slow({"x": np.arange(40.0)})
    with Prefetcher(data, batches(10), depth=3) as loader:
        got = [(rows, batch["x"]) for rows, batch in loader]
    assert [r.tolist() for r, _ in got] == [b.tolist() for b in batches(10)]
    assert np.array_equal(np.concatenate([x for _, x in got]), np.arange(40.0))
    assert no_prefetch_threads()


def test_reading_overlaps_the_step():
    data = Slow({"x": np.arange(40.0)}, delay=0.03)
    started = time.perf_counter()
    with Prefetcher(data, batches(10)) as loader:
        for _ in loader:
            time.sleep(0.03)  # the step
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # 0.6 s one after the other; ~0.33 s overlapped


def test_an_error_is_raised_at_its_batch_and_the_thread_ends():
    data = Slow({"x": np.arange(40.0)}, fail_at=3)
    seen = []
    with pytest.raises(DataError, match=r"bad\.png: cannot read batch 3"):  # noqa: SIM117
        with Prefetcher(data, batches(10)) as loader:
            for rows, _ in loader:
                seen.append(rows[0])
    assert seen == [0, 4, 8]
    assert no_prefetch_threads()


def test_leaving_early_stops_the_thread():
    data = Slow({"x": np.arange(4000.0)}, delay=0.01)
    with Prefetcher(data, batches(1000), depth=2) as loader:
        for i, _ in enumerate(loader):
            if i == 2:
                break
    assert no_prefetch_threads()
    assert data.taken <= 6  # it stopped reading: at most the queue and one in hand


def test_an_interrupt_in_the_loop_stops_the_thread():
    data = Slow({"x": np.arange(400.0)}, delay=0.01)
    with pytest.raises(KeyboardInterrupt), Prefetcher(data, batches(100)) as loader:
        for i, _ in enumerate(loader):
            if i == 1:
                raise KeyboardInterrupt
    assert no_prefetch_threads()
