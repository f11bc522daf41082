"""The whole GPU check in one call (issue 14): every CUDA path of ktrans, and the race
against PyTorch CUDA, written under --out as gpu_check.json, gpu_check.md and logs.

Sections (each one runs even when an earlier one failed; each failure is recorded):

    environment   the GPU, driver, CUDA, cuDNN, onnxruntime and torch versions
    gpu_tests     the pytest `gpu` marker set, with the GPU visible
    examples      every examples/*.kdl: `ktrans run --device cuda` against the CPU's
                  outputs (the max absolute and relative difference per output)
    training      `ktrans train --device cuda` on mnist_mlp and mnist_cnn for one epoch
                  against the CPU run, and the first steps' losses of both devices
    train_speed   samples/s of the ONNX engine's step (IO binding) against PyTorch eager
                  on the same device, at batch 128 and 512, in alternating blocks
    inference     samples/s with IO binding: ktrans's ONNX against torch eager and
                  against torch.onnx.export's ONNX on the same provider
    torch_engine  `ktrans train --engine torch --device cuda` in float32 and bfloat16
                  (where this checkout has the torch engine)

On the GPU machine (onnxruntime-gpu staged as docs/benchmarks.md#gpu-check says):

    PYTHONPATH=/tmp/site:$PWD python3 bench/gpu_check.py --out $OUT

Rehearsal on a machine without a GPU: the same code paths on the CPU, shorter timings.

    .venv/bin/python bench/gpu_check.py --dry-run --out /tmp/gpu_check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
KTRANS = [sys.executable, "-m", "transpiler"]
TRAINED = ("mnist_mlp", "mnist_cnn")
MNIST = ROOT / "examples" / "data" / "mnist_5k.npz"


class Check:
    """Where the check writes, which device it races on, and how long its blocks are."""

    def __init__(self, out: Path, dry_run: bool) -> None:
        self.out = out
        self.dry_run = dry_run
        self.device = "cpu" if dry_run else "cuda"
        self.block = 0.2 if dry_run else 1.0  # seconds per timing block
        self.rounds = 1 if dry_run else 3
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        if not dry_run:
            self.env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES") or "0"

    def ktrans(self, *args, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*KTRANS, *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            cwd=ROOT,
        )


# ------------------------------------------------------------------ sections


def environment(check: Check) -> dict:
    import numpy as np
    import onnxruntime as ort

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "device": check.device,
        "dry_run": check.dry_run,
    }
    try:
        from onnxruntime.capi import build_and_package_info as build

        info["onnxruntime_cuda"] = getattr(build, "cuda_version", None)
    except ImportError:
        pass
    if shutil.which("nvidia-smi"):
        query = "name,driver_version,memory.total,compute_cap"
        smi = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cudnn"] = torch.backends.cudnn.version()
    except ImportError:
        info["torch"] = None
    from transpiler.templates.ktrans_runtime.cuda import cuda_problem

    info["cuda_problem"] = cuda_problem(ort) if check.device == "cuda" else None
    return info


def gpu_tests(check: Check) -> dict:
    files = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if "mark.gpu" in p.read_text()
    )
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-rs", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *files], capture_output=True, text=True, env=check.env, cwd=ROOT, timeout=300
    )
    (check.out / "pytest.log").write_text(result.stdout + result.stderr)
    counts = [line for line in result.stdout.splitlines() if " in " in line and "ed" in line]
    return {
        "files": files,
        "exit_code": result.returncode,
        "summary": counts[-1].strip("= ") if counts else result.stdout.strip()[-200:],
    }


def _random_feeds(model_path: Path, batch: int) -> dict:
    """Inputs for an ONNX model from its declared types: dynamic axes 16 long, ids 0 or 1
    (valid for any Embedding), floats in [0, 1)."""
    import numpy as np
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    rng = np.random.default_rng(0)
    feeds = {}
    for value in model.graph.input:
        t = value.type.tensor_type
        dims = [d.dim_value if d.dim_value else 16 for d in t.shape.dim]
        dims[0] = batch
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.random(dims).astype(dtype)
        elif dtype == np.bool_:
            feeds[value.name] = np.ones(dims, dtype)
        else:
            feeds[value.name] = rng.integers(0, 2, dims).astype(dtype)
    return feeds


def examples(check: Check) -> dict:
    """`ktrans run` of every example on the CPU and on --device, compared output by output."""
    import numpy as np

    results = {}
    for kdl in sorted((ROOT / "examples").glob("*.kdl")):
        name = kdl.stem
        folder = check.tmp / "examples" / name
        folder.mkdir(parents=True)
        model = folder / f"{name}.onnx"
        built = check.ktrans("build", kdl, "-o", model)
        if built.returncode:
            results[name] = {"error": f"build: {built.stderr.strip()[-300:]}"}
            continue
        feeds = _random_feeds(model, 2)
        args = []
        for input_name, array in feeds.items():
            np.save(folder / f"{input_name}.npy", array)
            args += ["--input", f"{input_name}={folder / f'{input_name}.npy'}"]
        outputs = {}
        for device in ("cpu", check.device):
            path = folder / f"out_{device}.npz"
            started = time.perf_counter()
            ran = check.ktrans("run", model, *args, "--device", device, "-o", path)
            if ran.returncode:
                outputs = {"error": f"run --device {device}: {ran.stderr.strip()[-300:]}"}
                break
            outputs[device] = (dict(np.load(path)), time.perf_counter() - started)
        if "error" in outputs:
            results[name] = outputs
            continue
        cpu, _ = outputs["cpu"]
        other, seconds = outputs[check.device]
        diffs = {}
        for key, expected in cpu.items():
            got = other[key].astype(np.float64)
            diff = np.abs(got - expected)
            scale = max(float(np.abs(expected).max()), 1e-12)
            diffs[key] = {"max_abs": float(diff.max()), "max_rel": float(diff.max() / scale)}
        worst = max(d["max_rel"] for d in diffs.values())
        results[name] = {"outputs": diffs, "max_rel": worst, "run_seconds": round(seconds, 2)}
    return results


def _first_step_losses(name: str, device: str, steps: int, tmp: Path) -> list[float]:
    """The losses of the first `steps` training steps of the example's bundle on `device`,
    on the first rows of the bundled MNIST data (the same batches on every device)."""
    import numpy as np
    from train_speed import MODELS

    from transpiler.emit.code.train_script import pick_train, write_training_bundle
    from transpiler.emit.train.names import LOSS_OUTPUT, LR_INPUT, STEP_INPUT
    from transpiler.graph import load_one
    from transpiler.templates.ktrans_runtime.ort_engine import OrtEngine

    _, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    folder = write_training_bundle(graph, pick_train(graph), tmp / f"{name}_{device}")[0].parent
    files = {k: f"{graph.name}.{k}.onnx" for k in ("train", "eval")}
    files.update(inference=f"{graph.name}.onnx", init=f"{graph.name}.init.npz")
    files.update(offsets=f"{graph.name}.offsets.json")
    names = {"step": STEP_INPUT, "learning_rate": LR_INPUT, "loss": LOSS_OUTPUT}
    engine = OrtEngine(folder, files, names, device=device)
    with np.load(MNIST) as data:
        x = data["x_train"][: 64 * steps].astype(np.float32)
        labels = data["y_train"][: 64 * steps].astype(np.int64)
    x = x.reshape(len(x), *MODELS[name])
    if x.max() > 1 and not any(la.keras_class() == "Rescaling" for la in graph.layers):
        x = x / 255.0  # the example takes pixels in [0, 1] when it has no Rescaling layer
    y = np.eye(10, dtype=np.float32)[labels]
    losses = []
    for step in range(steps):
        rows = slice(64 * step, 64 * (step + 1))
        batch = {graph.inputs[0].name: x[rows], "target:output": y[rows]}
        losses.append(float(engine.step(batch, step, 1e-3)[LOSS_OUTPUT]))
        engine.commit()
    return losses


def training(check: Check) -> dict:
    """One epoch of `ktrans train` on both devices, and the first steps' losses."""
    results = {}
    for name in TRAINED:
        entry: dict = {}
        histories = {}
        for device in ("cpu", check.device):
            out = check.tmp / "train" / f"{name}_{device}"
            started = time.perf_counter()
            trained = check.ktrans(
                "train", ROOT / f"examples/{name}.kdl", "--data", MNIST, "--epochs", 1,
                "--device", device, "--out", out, "--verbose", 0, timeout=600,
            )  # fmt: skip
            entry[f"{device}_seconds"] = round(time.perf_counter() - started, 2)
            if trained.returncode:
                entry["error"] = f"train --device {device}: {trained.stderr.strip()[-400:]}"
                break
            histories[device] = json.loads((out / "history.json").read_text())
            results_json = json.loads((out / "results.json").read_text())
            entry[f"{device}_steps_per_second"] = results_json.get("steps_per_second")
        if "error" not in entry:
            cpu, other = histories["cpu"], histories[check.device]
            entry["loss"] = {"cpu": cpu["loss"][-1], check.device: other["loss"][-1]}
            entry["loss_rel_diff"] = abs(cpu["loss"][-1] - other["loss"][-1]) / abs(cpu["loss"][-1])
        steps = 5
        first = {d: _first_step_losses(name, d, steps, check.tmp) for d in ("cpu", check.device)}
        entry["first_steps"] = first
        entry["first_steps_max_rel_diff"] = max(
            abs(a - b) / abs(a) for a, b in zip(first["cpu"], first[check.device])
        )
        results[name] = entry
    return results


def train_speed(check: Check) -> dict:
    """Samples/s of one training step, ktrans's engine against PyTorch eager."""
    from train_speed import alternate, ktrans_step, torch_step

    results = {}
    for name in TRAINED:
        for batch in (128, 512):
            ours = ktrans_step(name, None, str(check.tmp), check.device, batch)
            theirs = torch_step(name, None, check.device, batch)
            t_ours, t_theirs = alternate([ours, theirs], check.rounds, check.block)
            ours_s, theirs_s = statistics.median(t_ours), statistics.median(t_theirs)
            results[f"{name}@{batch}"] = {
                "ktrans_samples_per_s": round(batch / ours_s),
                "torch_samples_per_s": round(batch / theirs_s),
                "ktrans_over_torch": round(theirs_s / ours_s, 3),
                "rounds": [round(b / a, 3) for a, b in zip(t_ours, t_theirs)],
            }
    return results


def _bound_runner(path: str, feed: dict, device: str):
    """One inference call with IO binding: the input already on the device, the output
    left there; returns a function that runs it and waits."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    session = ort.InferenceSession(path, options, providers=[provider])
    binding = session.io_binding()
    for name, array in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, device, 0))
    for output in session.get_outputs():
        binding.bind_output(output.name, device)

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run


def inference(check: Check) -> dict:
    import numpy as np
    import torch
    from torch_models import MnistCNN, MnistMLP, ResNet50

    from transpiler.emit.onnx import build_model, save_model
    from transpiler.graph import load_one

    cases = [
        ("mnist_mlp", MnistMLP, (784,), 128),
        ("mnist_cnn", MnistCNN, (28, 28, 1), 128),
        ("resnet50", ResNet50, (224, 224, 3), 2 if check.dry_run else 32),
    ]
    sync = torch.cuda.synchronize if check.device == "cuda" else lambda: None
    from train_speed import alternate

    results = {}
    for name, cls, shape, batch in cases:
        _, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
        ours = str(check.tmp / f"{name}.onnx")
        save_model(build_model(graph), ours)
        model = cls().eval()
        theirs = str(check.tmp / f"{name}_torch.onnx")
        torch.onnx.export(
            model, (torch.zeros(1, *shape),), theirs, dynamo=False, opset_version=17,
            input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}},
        )  # fmt: skip
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        model = model.to(check.device)
        xt = torch.from_numpy(x).to(check.device)

        def eager(m=model, xt=xt) -> None:
            with torch.inference_mode():
                m(xt)
            sync()

        runners = [
            _bound_runner(ours, {graph.inputs[0].name: x}, check.device),
            _bound_runner(theirs, {"x": x}, check.device),
            eager,
        ]
        t_ours, t_export, t_eager = (
            statistics.median(t) for t in alternate(runners, check.rounds, check.block)
        )
        results[f"{name}@{batch}"] = {
            "ktrans_samples_per_s": round(batch / t_ours),
            "torch_onnx_export_samples_per_s": round(batch / t_export),
            "torch_eager_samples_per_s": round(batch / t_eager),
            "ktrans_over_export": round(t_export / t_ours, 3),
            "ktrans_over_eager": round(t_eager / t_ours, 3),
        }
    return results


def torch_engine(check: Check) -> dict:
    """The PyTorch engine on --device: float32, and bfloat16 autocast (on CUDA; on the
    CPU bfloat16 must be refused in one line)."""
    help_text = check.ktrans("train", "--help").stdout
    if "--engine" not in help_text:
        return {"skipped": "this checkout has no `ktrans train --engine torch`"}
    results = {}
    for precision in ("float32", "bfloat16"):
        out = check.tmp / "torch_engine" / precision
        trained = check.ktrans(
            "train", ROOT / "examples/mnist_cnn.kdl", "--data", MNIST, "--epochs", 1,
            "--engine", "torch", "--device", check.device, "--precision", precision,
            "--out", out, "--verbose", 0, timeout=600,
        )  # fmt: skip
        entry: dict = {"exit_code": trained.returncode}
        last = (trained.stderr.strip().splitlines() or [""])[-1]
        if trained.returncode and check.device == "cpu" and precision != "float32":
            refused = last.startswith(f"error: --precision {precision} needs --device cuda")
            entry["refused_on_the_cpu"] = refused  # as it must be: one line, exit 1
            if not refused:
                raise AssertionError(f"--precision {precision} on the CPU: {last}")
        elif trained.returncode:
            entry["stderr"] = last[-400:]
        else:
            summary = json.loads((out / "results.json").read_text())
            history = json.loads((out / "history.json").read_text())
            entry["steps_per_second"] = summary.get("steps_per_second")
            entry["loss"] = history["loss"][-1]
        results[precision] = entry
    return results


SECTIONS = {
    "environment": environment,
    "gpu_tests": gpu_tests,
    "examples": examples,
    "training": training,
    "train_speed": train_speed,
    "inference": inference,
    "torch_engine": torch_engine,
}


# ------------------------------------------------------------------ the report


def summary(report: dict) -> str:
    """gpu_check.md: the figures a reader needs, one table per section."""
    env = report.get("environment", {})
    lines = [
        f"# GPU check ({'dry run on the CPU' if env.get('dry_run') else env.get('gpu', '?')})",
        "",
        f"- onnxruntime {env.get('onnxruntime')} (CUDA {env.get('onnxruntime_cuda')}), "
        f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), "
        f"python {env.get('python')}; nvidia-smi: {env.get('nvidia_smi', 'none')}",
        f"- gpu tests: {report.get('gpu_tests', {}).get('summary', '?')}",
        "",
        "| example | max rel diff vs CPU |",
        "|---|---|",
    ]
    for name, entry in report.get("examples", {}).items():
        lines.append(f"| {name} | {entry.get('max_rel', entry.get('error'))} |")
    lines += ["", "| training | loss rel diff | first steps rel diff |", "|---|---|---|"]
    for name, entry in report.get("training", {}).items():
        lines.append(
            f"| {name} | {entry.get('loss_rel_diff', entry.get('error'))} | "
            f"{entry.get('first_steps_max_rel_diff')} |"
        )
    lines += ["", "| train step | ktrans/s | torch/s | ratio |", "|---|---|---|---|"]
    for key, e in report.get("train_speed", {}).items():
        if isinstance(e, dict) and "ktrans_samples_per_s" in e:
            lines.append(
                f"| {key} | {e['ktrans_samples_per_s']} | {e['torch_samples_per_s']} | "
                f"{e['ktrans_over_torch']}x |"
            )
    lines += [
        "",
        "| inference | ktrans/s | torch.onnx/s | eager/s | vs export | vs eager |",
        "|---|---|---|---|---|---|",
    ]
    for key, e in report.get("inference", {}).items():
        if isinstance(e, dict) and "ktrans_samples_per_s" in e:
            lines.append(
                f"| {key} | {e['ktrans_samples_per_s']} | {e['torch_onnx_export_samples_per_s']}"
                f" | {e['torch_eager_samples_per_s']} | {e['ktrans_over_export']}x | "
                f"{e['ktrans_over_eager']}x |"
            )
    lines += ["", "| torch engine | exit | steps/s | loss |", "|---|---|---|---|"]
    for key, e in (report.get("torch_engine") or {}).items():
        if isinstance(e, dict):
            speed, loss = e.get("steps_per_second"), e.get("loss")
            note = "refused on the CPU, as it must be" if e.get("refused_on_the_cpu") else ""
            lines.append(
                f"| {key} | {e.get('exit_code')} | "
                f"{round(speed, 1) if speed else note or e.get('stderr', '')} | {loss or ''} |"
            )
        else:
            lines.append(f"| {key} | {e} | | |")
    failed = [k for k, v in report.items() if isinstance(v, dict) and "failed" in v]
    lines += ["", f"sections that failed: {', '.join(failed) or 'none'}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    parser.add_argument("--dry-run", action="store_true", help="the same paths on the CPU")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="these sections")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.dry_run)
    report: dict = {}
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        try:
            report[name] = section(check)
        except Exception as e:  # record it and go on: one call must bring back everything
            report[name] = {
                "failed": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }
        seconds = time.perf_counter() - started
        print(f"{name}: {seconds:.1f} s", flush=True)
        report.setdefault("seconds", {})[name] = round(seconds, 1)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "gpu_check.md").write_text(summary(report))
    print(summary(report))
    shutil.rmtree(check.tmp, ignore_errors=True)
    failed = [k for k, v in report.items() if isinstance(v, dict) and "failed" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
