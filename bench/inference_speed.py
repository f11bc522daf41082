"""Inference on onnxruntime CPU: ktrans's ONNX vs torch.onnx.export's ONNX of the same
architecture vs torch eager, in one run, same threads.

Run: .venv/bin/python bench/inference_speed.py [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from torch_models import MnistCNN, MnistMLP, ResNet50  # noqa: E402

CASES = [
    ("mnist_mlp", MnistMLP, (784,), (1, 128)),
    ("mnist_cnn", MnistCNN, (28, 28, 1), (1, 128)),
    ("resnet50", ResNet50, (224, 224, 3), (1, 8)),
]


def bench(fns: list, rounds: int = 3, block: float = 0.5, min_runs: int = 3) -> list[float]:
    """Median seconds per call of each function. The functions take turns in blocks of
    `block` seconds, `rounds` times, so a slow period of the machine falls on all of them
    alike; not call by call, because each runtime's threads spin for a moment after a
    call and would slow the other's next one."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < block or n < min_runs:
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
                n += 1
    return [statistics.median(t) for t in times]


def session(path: str, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transpiler.emit.onnx import build_model, save_model
    from transpiler.graph import load

    print(f"onnxruntime {ort.__version__} CPU, torch {torch.__version__}, {args.threads} threads")
    print(
        f"{'model':10s} {'batch':>5s} {'ktrans ms':>10s} {'torch.onnx ms':>14s} "
        f"{'eager ms':>9s} {'vs export':>9s} {'vs eager':>9s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, cls, shape, batches in CASES:
            _, graphs = load(str(ROOT / f"examples/{name}.kdl"))
            graph = next(iter(graphs.values()))
            ours = f"{tmp}/{name}.onnx"
            save_model(build_model(graph), ours)
            model = cls().eval()
            theirs = f"{tmp}/{name}_torch.onnx"
            x0 = torch.zeros(1, *shape)
            torch.onnx.export(
                model,
                (x0,),
                theirs,
                dynamo=False,
                opset_version=17,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}},
            )
            s_ours, s_theirs = session(ours, args.threads), session(theirs, args.threads)
            in_name = s_ours.get_inputs()[0].name
            for batch in batches:
                x = np.random.default_rng(0).normal(size=(batch, *shape)).astype(np.float32)
                xt = torch.from_numpy(x)

                def eager(m=model, x=xt):
                    with torch.inference_mode():
                        return m(x)

                t_ours, t_theirs, t_eager = bench(
                    [
                        lambda s=s_ours, n=in_name, x=x: s.run(None, {n: x}),
                        lambda s=s_theirs, x=x: s.run(None, {"x": x}),
                        eager,
                    ]
                )
                print(
                    f"{name:10s} {batch:5d} {1000 * t_ours:10.3f} {1000 * t_theirs:14.3f} "
                    f"{1000 * t_eager:9.3f} {t_theirs / t_ours:8.2f}x {t_eager / t_ours:8.2f}x"
                )


if __name__ == "__main__":
    main()
