"""How much reading the data costs a training step, through the real training loop: the
DigitsCNN bundle (`ktrans codegen --target train` of examples/digits_cnn.kdl) trained by
its own script (TrainingRun, the onnxruntime engine, batches read ahead on the prefetch
thread) on the same 1,797 digits from three sources:

- memory: an .npz of the decoded images (arrays in memory);
- the bundled image folder (examples/data/digits_png: PNG files decoded and resized
  once, when the folder is opened, which is also their check; kept decoded, as tf.data's
  cache() keeps them; the time to open each source is printed too);
- memory-mapped .npy files of the same arrays (each batch gathered from the files).

Each run trains a few epochs (no validation, verbose 0); the wall time of every epoch's
training steps (from the loop's begin_epoch to its end_epoch: the steps and any wait for
a batch, not the checkpoint) is recorded. The sources run in alternating blocks, so that
drifts of a shared machine fall on all of them; the result is each source's median
time per step as a ratio to memory's, and the median of the ratios block by block (each
block against memory's run beside it), with the first epochs apart (against memory's
first epoch: the first steps of a run are slower for every source).

    python bench/data_speed.py [--blocks 5] [--epochs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transpiler.cli import main as ktrans  # noqa: E402

SOURCE = (ROOT / "examples/digits_cnn.kdl").read_text()
# the same model without the data section's validation split, so every source trains on
# all 1,797 images; the arrays' bundle has no data section at all (it reads an .npz)
FOLDER_KDL = SOURCE.replace("        validation_split = 0.2", "")
ARRAYS_KDL = FOLDER_KDL[: FOLDER_KDL.index("    data {")] + "}\n"


def bundles(tmp: Path) -> dict[str, Path]:
    """{"folder": script, "arrays": script}: the two bundles of one model."""
    scripts = {}
    for name, text in (("folder", FOLDER_KDL), ("arrays", ARRAYS_KDL)):
        (tmp / f"{name}.kdl").write_text(text)
        out = tmp / f"bundle_{name}"
        assert ktrans(["codegen", str(tmp / f"{name}.kdl"), "--target", "train",
                       "-o", str(out)]) == 0  # fmt: skip
        scripts[name] = out / "train_DigitsCNN.py"
    return scripts


def arrays(tmp: Path, folder: Path) -> tuple[Path, Path]:
    """The image folder's images, decoded as training decodes them, as an .npz and as a
    folder of .npy files."""
    from transpiler.templates.ktrans_runtime.image_folder import index_folder, read_image

    index = index_folder(folder, seed=1)
    images = np.stack([read_image(p, 1, (8, 8), "bilinear") for p in index.paths])
    labels = index.labels.astype(np.int64)
    np.savez(tmp / "digits.npz", image=images, output=labels)
    (tmp / "npy").mkdir()
    np.save(tmp / "npy" / "image.npy", images)
    np.save(tmp / "npy" / "output.npy", labels)
    return tmp / "digits.npz", tmp / "npy"


def load_script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EpochClock:
    """Wraps TrainingRun.begin_epoch/end_epoch: (seconds, steps) of every epoch's steps."""

    def __init__(self, loop) -> None:
        self.epochs: list[tuple[float, int]] = []
        begin, end = loop.TrainingRun.begin_epoch, loop.TrainingRun.end_epoch
        clock = self

        def begin_epoch(run):
            begin(run)
            run._bench_started, run._bench_step = time.perf_counter(), run.step

        def end_epoch(run, logs):
            clock.epochs.append((time.perf_counter() - run._bench_started,
                                 run.step - run._bench_step))  # fmt: skip
            end(run, logs)

        loop.TrainingRun.begin_epoch, loop.TrainingRun.end_epoch = begin_epoch, end_epoch
        # and the time to open the data (an image folder that fits in memory is decoded
        # then: its check is the decoding)
        self.opened: list[float] = []
        open_data = loop.TrainingRun.open_data

        def timed_open(run, *args, **kwargs):
            started = time.perf_counter()
            try:
                return open_data(run, *args, **kwargs)
            finally:
                clock.opened.append(time.perf_counter() - started)

        loop.TrainingRun.open_data = timed_open


def train(module, kt, data: Path, out: Path, epochs: int) -> None:
    argv = ["--data", str(data), "--out", str(out), "--epochs", str(epochs), "--verbose", "0",
            "--seed", "1"]  # fmt: skip
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            code = kt.cli.run(lambda interrupt, _: module.main(interrupt, argv))
        finally:
            sys.stdout = stdout
    assert code == 0, f"training on {data} failed"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    folder = ROOT / "examples/data/digits_png"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scripts = bundles(tmp)
        npz, npy = arrays(tmp, folder)
        sys.path.insert(0, str(scripts["folder"].parent))  # the bundle's ktrans_runtime
        import ktrans_runtime as kt

        modules = {name: load_script(path, f"train_{name}") for name, path in scripts.items()}
        clock = EpochClock(kt.loop)
        sources = {
            "memory (.npz)": (modules["arrays"], npz),
            "image folder": (modules["folder"], folder),
            "mmap .npy": (modules["arrays"], npy),
        }
        per_step: dict[str, list[float]] = {name: [] for name in sources}
        first = {f"{name}, 1st epoch": [] for name in sources}
        opening: dict[str, list[float]] = {name: [] for name in sources}
        for block in range(args.blocks + 1):
            for i, (name, (module, data)) in enumerate(sources.items()):
                clock.epochs.clear()
                clock.opened.clear()
                train(module, kt, data, tmp / f"run_{block}_{i}", args.epochs)
                if not block:  # the first block warms up
                    continue
                opening[name].append(sum(clock.opened))
                times = [seconds / steps for seconds, steps in clock.epochs]
                first[f"{name}, 1st epoch"].append(times[0])
                per_step[name].append(statistics.median(times[1:]))
    print(
        f"DigitsCNN through the training loop, batch 32, 57 steps an epoch, {args.blocks} "
        f"blocks of {args.epochs} epochs per source; the epochs after the first, then the "
        "first epochs against memory's first"
    )
    print(f"  {'source':28s} {'ms/step':>7s}   median ratio   paired ratio (range)")
    for table in (per_step, first):
        memory = next(iter(table.values()))
        base = statistics.median(memory)
        for name, values in table.items():
            median = statistics.median(values)
            # each block's time against memory's in the same block: drifts cancel
            paired = [v / m for v, m in zip(values, memory)]
            print(
                f"  {name:28s} {median * 1e3:7.3f}   {median / base:5.2f}x         "
                f"{statistics.median(paired):5.2f}x ({min(paired):.2f}-{max(paired):.2f})"
            )
    print("  opening the data (ms, median): " + ", ".join(
        f"{name} {statistics.median(values) * 1e3:.0f}" for name, values in opening.items()
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
