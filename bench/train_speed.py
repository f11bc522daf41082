"""Training-step throughput at batch 128: ktrans's two engines as the generated scripts
run them, the onnxruntime engine (the bundle runtime's OrtEngine: IO binding, state kept
on the device) and the PyTorch engine (TorchEngine: the generated nn.Module, Keras's
loss, metrics and optimizer), vs PyTorch eager written by hand (bench/torch_models.py,
torch.optim), same model, same optimizer, same threads.

The three take turns in blocks of `--block` seconds, `--rounds` times, in one process, so
a slow period of this shared machine falls on both (as bench/inference_speed.py does);
each run is a fresh process, and `--runs` of them give the spread. Keras is left out: its
per-call train_on_batch overhead is not its fit speed (see git history for fit figures).

Run: .venv/bin/python bench/train_speed.py [--runs 3] [--threads 2] [--block 2]
(--block 0: turns call by call)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mnist_mlp": (784,), "mnist_cnn": (28, 28, 1)}
BATCH = 128


def data(shape, batch: int = BATCH):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return x, y


def ktrans_step(
    name: str, threads: int | None, tmp: str, device: str = "cpu", batch_size: int = BATCH
):
    """One training step of the bundle's engine, as the script calls it (IO binding: the
    state stays on `device`; the batch is copied there and the loss back, every step)."""
    sys.path.insert(0, str(ROOT))
    from transpiler.emit.code.train_script import pick_train, write_training_bundle
    from transpiler.emit.train.names import LOSS_OUTPUT, LR_INPUT, STEP_INPUT
    from transpiler.graph import load_one
    from transpiler.templates.ktrans_runtime.ort_engine import OrtEngine

    _, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    folder = write_training_bundle(graph, pick_train(graph), Path(tmp) / name)[0].parent
    files = {k: f"{graph.name}.{k}.onnx" for k in ("train", "eval")}
    files.update(inference=f"{graph.name}.onnx", init=f"{graph.name}.init.npz")
    files.update(offsets=f"{graph.name}.offsets.json")
    names = {"step": STEP_INPUT, "learning_rate": LR_INPUT, "loss": LOSS_OUTPUT}
    engine = OrtEngine(folder, files, names, device=device, threads=threads)
    x, y = data(MODELS[name], batch_size)
    batch = {graph.inputs[0].name: x, "target:output": y}
    counter = iter(range(10**9))

    def step() -> None:
        engine.step(batch, next(counter), 1e-3)
        engine.commit()

    return step


def torch_engine_step(
    name: str, threads: int | None, tmp: str, device: str = "cpu", batch_size: int = BATCH
):
    """One training step of the PyTorch bundle's engine, as its script calls it (the
    batch copied to `device`, the logged values back, every step)."""
    import importlib.util
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT))
    from transpiler.emit.code.torch_bundle import write_torch_bundle
    from transpiler.emit.code.train_script import pick_train
    from transpiler.graph import load_one

    program, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    script = write_torch_bundle(graph, pick_train(graph), Path(tmp) / f"{name}_torch")[0]
    sys.path.insert(0, str(script.parent))  # the bundle's ktrans_runtime and module
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    s = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(s)
    module = __import__(Path(s.FILES["module"]).stem)
    model = getattr(module, Path(s.FILES["module"]).stem).from_keras_weights(
        s.kt.torch_files.initial_weights(script.parent, s.FILES)
    )
    compiled = {"loss": s.LOSS, "regularizers": s.REGULARIZERS, "optimizer": s.OPTIMIZER}
    compiled.update(losses=s.LOSSES, metric_plan=s.METRIC_PLAN)
    args = SimpleNamespace(device=device, precision="float32", threads=threads)
    engine = s.kt.torch_engine.TorchEngine(model, compiled, args)
    x, y = data(MODELS[name], batch_size)
    batch = {graph.inputs[0].name: x, "target:output": y}
    counter = iter(range(10**9))

    def step() -> None:
        engine.step(batch, next(counter), s.OPTIMIZER["learning_rate"])
        engine.commit()

    return step


def torch_step(name: str, threads: int | None, device: str = "cpu", batch_size: int = BATCH):
    """One PyTorch eager step; on CUDA it waits for the GPU, as the ONNX engine's step
    waits to read its loss."""
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from torch_models import MnistCNN, MnistMLP

    if threads:
        torch.set_num_threads(threads)
    model = {"mnist_mlp": MnistMLP, "mnist_cnn": MnistCNN}[name]().to(device)
    if name == "mnist_mlp":  # RMSprop(0.001), Keras's rho and epsilon
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    else:  # Adadelta(learning_rate=1.0, rho=0.95)
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    x, y = (torch.from_numpy(a).to(device) for a in data(MODELS[name], batch_size))
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None

    def step() -> None:
        opt.zero_grad()
        p = model(x).clamp(1e-7, 1 - 1e-7)
        loss = -(y * torch.log(p)).sum(-1).mean()
        loss.backward()
        opt.step()
        sync()

    return step


def alternate(fns: list, rounds: int, block: float, warmup: int = 5) -> list[list[float]]:
    """Seconds per call of each function, per round: the functions take turns in blocks
    of `block` seconds (each at least 3 calls), `rounds` times; with `block` 0 they take
    turns call by call (20 calls of each of the others per round, the first one between
    them), so that even a short slow period of the machine falls on all of them alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    per_round: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        if block <= 0:
            times: list[list[float]] = [[] for _ in fns]
            # the first function between each of the others: onnxruntime's threads keep
            # spinning a while after its call, at the cost of whatever runs next, so
            # every other function follows it alike
            for i in range(20 * (len(fns) - 1)):
                for k in (0, 1 + i % (len(fns) - 1)):
                    t = time.perf_counter()
                    fns[k]()
                    times[k].append(time.perf_counter() - t)
            for out, measured in zip(per_round, times):
                out.append(statistics.median(measured))
            continue
        for fn, out in zip(fns, per_round):
            times = []
            start = time.perf_counter()
            while time.perf_counter() - start < block or len(times) < 3:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            out.append(statistics.median(times))
    return per_round


def child(name: str, threads: int, rounds: int, block: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours = ktrans_step(name, threads, tmp)
        engine = torch_engine_step(name, threads, tmp)
        theirs = torch_step(name, threads)
        t_ours, t_engine, t_theirs = alternate([ours, engine, theirs], rounds, block)
    print(json.dumps({"ktrans": t_ours, "torch_engine": t_engine, "torch": t_theirs}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=float, default=2.0)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--child", metavar="MODEL")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads, args.rounds, args.block)
        return
    print(
        f"batch {BATCH}, {args.threads} threads, {args.rounds} rounds of {args.block} s "
        f"blocks per run, {args.runs} runs; samples/s (median step of each run)"
    )
    for name in args.models:
        ratios, engine_ratios = [], []
        for run in range(args.runs):
            command = [
                sys.executable, __file__, "--child", name, "--threads", str(args.threads),
                "--rounds", str(args.rounds), "--block", str(args.block),
            ]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            ours = statistics.median(result["ktrans"])
            engine = statistics.median(result["torch_engine"])
            theirs = statistics.median(result["torch"])
            ratios.append(theirs / ours)
            engine_ratios.append(theirs / engine)
            rounds = " ".join(f"{b / a:.2f}" for a, b in zip(result["ktrans"], result["torch"]))
            by_round = zip(result["torch_engine"], result["torch"])
            engine_rounds = " ".join(f"{b / a:.2f}" for a, b in by_round)
            print(
                f"{name:10s} run {run + 1}: ktrans {BATCH / ours:8.0f}/s  torch engine "
                f"{BATCH / engine:8.0f}/s  torch {BATCH / theirs:8.0f}/s\n"
                f"{'':10s}   ktrans/torch {theirs / ours:.2f}x (rounds: {rounds}); "
                f"torch engine/torch {theirs / engine:.2f}x (rounds: {engine_rounds})"
            )
        for label, values in (("ktrans", ratios), ("torch engine", engine_ratios)):
            print(
                f"{name:10s} {label}/torch over {args.runs} runs: median "
                f"{statistics.median(values):.2f}x, {min(values):.2f}x to {max(values):.2f}x"
            )


if __name__ == "__main__":
    main()
