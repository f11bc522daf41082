"""Data-parallel training throughput of the PyTorch bundle under torchrun: samples/s of
`train_<Model>.py` with 1 and with N processes (gloo on the CPU), as the script reports
its steps per second in results.json (training steps only: no start-up, validation or
writing). The whole batch is --batch (the processes share it).

Runs alternate (1, N, 1, N, ...) so that a busy period of a shared machine falls on both;
the figure is the median of each setting, and the spread is printed.

Run: .venv/bin/python bench/ddp_speed.py [--model mnist_mlp] [--processes 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"mnist_mlp": (784,), "mnist_cnn": (28, 28, 1)}


def bundle(name: str, folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from transpiler.emit.code.torch_bundle import write_torch_bundle
    from transpiler.emit.code.train_script import pick_train
    from transpiler.graph import load_one

    program, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    return write_torch_bundle(graph, pick_train(graph), folder / name, 0, program)[0]


def data(name: str, rows: int, path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((rows, *SHAPES[name]), dtype=np.float32)
    y = rng.integers(0, 10, rows)
    np.savez(path, x=x, y=y)
    return path


def once(script: Path, data_path: Path, out: Path, processes: int, batch: int, threads: int):
    args = ["--data", str(data_path), "--out", str(out), "--epochs", "1"]
    args += ["--batch-size", str(batch), "--validation-split", "0", "--verbose", "0"]
    if processes == 1:
        command = [sys.executable, str(script), *args, "--threads", str(threads)]
    else:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(processes), str(script), *args,
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads if processes == 1 else 1)}
    subprocess.run(command, check=True, capture_output=True, env=env)
    results = json.loads((out / "results.json").read_text())
    return results["steps_per_second"] * batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mnist_mlp", choices=list(SHAPES))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60, help="steps per run")
    parser.add_argument("--threads", type=int, default=2, help="of the one process")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = bundle(args.model, folder)
        data_path = data(args.model, args.batch * args.steps, folder / "data.npz")
        rates: dict[int, list[float]] = {1: [], args.processes: []}
        for run in range(args.runs):
            for n in rates:
                out = folder / f"out{n}-{run}"
                rates[n].append(once(script, data_path, out, n, args.batch, args.threads))
    print(
        f"{args.model}, batch {args.batch} (the whole batch), {args.steps} steps per run, "
        f"{args.runs} runs alternating; one process: {args.threads} threads, several: "
        "1 thread each (gloo)"
    )
    for n, values in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        print(f"{n} process(es): median {statistics.median(values):.0f} samples/s ({spread})")


if __name__ == "__main__":
    main()
