"""How much reading the data costs a training step: DigitsCNN's real step model
(`ktrans codegen --target train`, run with onnxruntime on the CPU) fed batches of 32 from
memory, from the bundled image folder (examples/data/digits_png, decoded and resized on
the prefetch thread) and from memory-mapped .npy files (prefetched). The three feeds run
in alternating blocks of steps, so that drifts of the machine fall on all of them, and
the result is each feed's median time per step as a ratio to memory's.

    python bench/data_speed.py [--blocks 7] [--steps 40]

Until the runtime loop reads image folders and .npy folders itself, this drives the step
model directly with `session.run` (the loop binds its state on the device instead), so
the ratio it reports is the loader's overhead against the real step's cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transpiler.cli import main as ktrans  # noqa: E402
from transpiler.templates.ktrans_runtime.feeds import ArrayDataset, Feed  # noqa: E402
from transpiler.templates.ktrans_runtime.npy_dir import open_npy_dir  # noqa: E402
from transpiler.templates.ktrans_runtime.prefetch import Prefetcher  # noqa: E402
from transpiler.templates.ktrans_runtime.sources import open_data  # noqa: E402

BATCH = 32


def step_model(out: Path):
    import onnxruntime as ort

    assert ktrans(["codegen", str(ROOT / "examples/digits_cnn.kdl"), "--target", "train",
                   "-o", str(out)]) == 0  # fmt: skip
    options = ort.SessionOptions()
    session = ort.InferenceSession(str(out / "DigitsCNN.train.onnx"), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    with np.load(out / "DigitsCNN.init.npz") as init:
        state = {k: init[k] for k in init.files}
    scalars = {i.name: i for i in session.get_inputs() if not i.shape}
    for name, info in scalars.items():
        state[name] = np.array(1e-3 if "float" in info.type else 1, np.float32
                               if "float" in info.type else np.int64)  # fmt: skip
    outputs = [o.name for o in session.get_outputs() if not o.name.startswith("new:")]
    return session, state, outputs


def datasets(tmp: Path):
    feeds = [Feed("image", "image", (8, 8, 1), np.float32),
             Feed("target:output", "output", (), np.int64)]  # fmt: skip
    settings = {"image_size": [8, 8], "color_mode": "grayscale"}
    images = open_data(ROOT / "examples/data/digits_png", feeds, settings, seed=1).train
    uncached = open_data(ROOT / "examples/data/digits_png", feeds, settings, seed=1).train
    uncached.cache = None  # every batch decodes its files (the first epoch's cost)
    everything = images.take(np.arange(images.size))  # fills the decoded-image cache
    memory = ArrayDataset(everything)
    npy = tmp / "npy"
    npy.mkdir()
    np.save(npy / "image.npy", everything["image"])
    np.save(npy / "output.npy", everything["target:output"])
    mapped = open_npy_dir(npy, feeds)["train"]
    return {
        "memory": memory,
        "image folder": images,
        "images, 1st epoch": uncached,
        "mmap .npy": mapped,
    }


def run_block(session, state, outputs, dataset, orders, prefetch: bool) -> list[float]:
    times = []

    def step(batch):
        started = time.perf_counter()
        session.run(outputs, {**batch, **state})
        return time.perf_counter() - started

    if not prefetch:
        for rows in orders:
            started = time.perf_counter()
            session.run(outputs, {**dataset.take(rows), **state})
            times.append(time.perf_counter() - started)
        return times
    with Prefetcher(dataset, orders) as batches:
        previous = time.perf_counter()
        for _, batch in batches:
            session.run(outputs, {**batch, **state})
            now = time.perf_counter()
            times.append(now - previous)  # the wait for the batch counts, as in the loop
            previous = now
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        session, state, outputs = step_model(tmp / "bundle")
        feeds = datasets(tmp)
        size = feeds["memory"].size
        rng = np.random.default_rng(0)
        per_step = {name: [] for name in feeds}
        for block in range(args.blocks + 1):
            for name, dataset in feeds.items():
                order = rng.permutation(size)
                orders = [order[i * BATCH : (i + 1) * BATCH] for i in range(args.steps)]
                times = run_block(session, state, outputs, dataset, orders, name != "memory")
                if block:  # the first block warms up
                    per_step[name].append(statistics.median(times[2:]))
    base = statistics.median(per_step["memory"])
    print(f"DigitsCNN training step, batch {BATCH}, {args.blocks} blocks of {args.steps} steps")
    for name, values in per_step.items():
        median = statistics.median(values)
        print(f"  {name:17s} {median * 1e3:7.3f} ms/step   {median / base:5.2f}x memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
