"""Training-step throughput (samples/s, batch 128) and peak memory: ktrans's training
ONNX on onnxruntime (IO binding, state kept on the device, as the generated script runs
it) vs PyTorch eager vs Keras 3 fit (torch backend), same model, same optimizer, same
threads, in one run. Each framework runs in its own process so peak RSS is its own.

Run: .venv/bin/python bench/train_speed.py [--threads 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mnist_mlp": (784,), "mnist_cnn": (28, 28, 1)}


def data(shape, n=128):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


def run_ktrans(name: str, steps: int, threads: int) -> float:
    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(ROOT))
    from transpiler.emit.train.model import build_training_model
    from transpiler.graph import load_one

    _, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    config = graph.trains["default"]
    tm = build_training_model(graph, config)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        tm.proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    x, y = data(MODELS[name])
    state = {**tm.params, **tm.buffers, **tm.slots}
    sets = [{k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in state.items()} for _ in range(2)]
    feeds = {
        graph.inputs[0].name: ort.OrtValue.ortvalue_from_numpy(x),
        "target:output": ort.OrtValue.ortvalue_from_numpy(y),
        "lr": ort.OrtValue.ortvalue_from_numpy(np.array(1e-3, np.float32)),
    }
    binding = session.io_binding()
    step_value = np.zeros((), np.int64)

    def step(i: int) -> None:
        src, dst = sets[i % 2], sets[(i + 1) % 2]
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for k, v in feeds.items():
            binding.bind_ortvalue_input(k, v)
        step_value[...] = i
        binding.bind_cpu_input("step", step_value)
        for k in state:
            binding.bind_ortvalue_input(k, src[k])
            binding.bind_ortvalue_output(f"new:{k}", dst[k])
        binding.bind_output("loss")
        session.run_with_iobinding(binding)

    for i in range(5):
        step(i)
    start = time.perf_counter()
    for i in range(5, 5 + steps):
        step(i)
    return 128 * steps / (time.perf_counter() - start)


def run_torch(name: str, steps: int, threads: int) -> float:
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from torch_models import MnistCNN, MnistMLP

    torch.set_num_threads(threads)
    model = {"mnist_mlp": MnistMLP, "mnist_cnn": MnistCNN}[name]()
    if name == "mnist_mlp":  # RMSprop(0.001), Keras's rho and epsilon
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    else:  # Adadelta(learning_rate=1.0, rho=0.95)
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    x, y = (torch.from_numpy(a) for a in data(MODELS[name]))

    def step() -> None:
        opt.zero_grad()
        p = model(x).clamp(1e-7, 1 - 1e-7)
        loss = -(y * torch.log(p)).sum(-1).mean()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 128 * steps / (time.perf_counter() - start)


def run_keras(name: str, steps: int, threads: int) -> float:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_examples import KERAS_TWINS  # the Keras twins the example tests use

    model = KERAS_TWINS[name]()
    opt = (
        keras.optimizers.RMSprop(1e-3)
        if name == "mnist_mlp"
        else keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95)
    )
    model.compile(optimizer=opt, loss="categorical_crossentropy")
    x, y = data(MODELS[name])
    import numpy as np

    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=128, epochs=1, verbose=0, shuffle=False)
    return 128 * steps / (time.perf_counter() - start)


def child(framework: str, name: str, steps: int, threads: int) -> None:
    fn = {"ktrans": run_ktrans, "torch": run_torch, "keras": run_keras}[framework]
    rate = fn(name, steps, threads)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rate": rate, "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps, args.threads)
        return
    print(f"batch 128, {args.threads} threads, {args.steps} timed steps; samples/s (peak RSS)")
    for name in MODELS:
        results = {}
        for framework in ("ktrans", "torch", "keras"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    framework,
                    name,
                    "--steps",
                    str(args.steps),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[framework] = json.loads(out.stdout.strip().splitlines()[-1])
        k = results["ktrans"]["rate"]
        line = "  ".join(
            f"{fw} {r['rate']:8.0f}/s ({r['peak_mb']:.0f} MB)" for fw, r in results.items()
        )
        print(
            f"{name:10s} {line}  ktrans/torch {k / results['torch']['rate']:.2f}x  "
            f"ktrans/keras {k / results['keras']['rate']:.2f}x"
        )


if __name__ == "__main__":
    main()
