"""`ktrans build examples/resnet50.kdl` against exporting the same ResNet-50 from PyTorch
with torch.onnx.export (legacy TorchScript exporter, and dynamo=True), each as a whole
process (interpreter start-up, imports, model construction, export, write), in one run.

Run: .venv/bin/python bench/build_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TORCH_EXPORT = """
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {bench!r})
import torch
from torch_models import ResNet50
model = ResNet50().eval()
x = torch.zeros(2, 224, 224, 3)  # dynamo needs an example batch above 1
torch.onnx.export(model, (x,), {out!r}, dynamo={dynamo}, opset_version={opset},
                  input_names=["image"], output_names=["output"],
                  dynamic_axes={{"image": {{0: "batch"}}}} if not {dynamo} else None,
                  dynamic_shapes=({{0: torch.export.Dim("batch")}},) if {dynamo} else None)
"""


def timed(commands: dict[str, str], runs: int, tmp: str) -> dict[str, float]:
    """Median wall time of each command; the commands take turns, so a slow period of
    the machine falls on all of them alike. Each run writes a new file ({out} in the
    command): replacing the 100 MB file of the previous run would time the filesystem
    freeing it (~0.1 s here), not the build."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for run in range(runs):
        for i, (label, cmd) in enumerate(commands.items()):
            out = f"{tmp}/out_{i}_{run}.onnx"
            argv = [part.replace("{out}", out) for part in cmd]
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
            Path(out).unlink()
    return {label: statistics.median(t) for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # An installed package has its bytecode compiled (pip does it, as it did for torch);
    # a source checkout run with PYTHONDONTWRITEBYTECODE would recompile every module.
    compileall.compile_dir(ROOT / "transpiler", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "ktrans build": [
                sys.executable, "-m", "transpiler", "build",
                str(ROOT / "examples/resnet50.kdl"), "-o", "{out}",
            ]
        }  # fmt: skip
        timed({"warm-up": commands["ktrans build"]}, 1, tmp)  # lark's parser cache
        for label, dynamo, opset in (
            ("torch.onnx.export (legacy)", False, 17),
            ("torch.onnx.export (dynamo=True)", True, 18),
        ):
            script = TORCH_EXPORT.format(
                bench=str(ROOT / "bench"), out="{out}", dynamo=dynamo, opset=opset
            )
            commands[label] = [sys.executable, "-c", script]
        results = timed(commands, args.runs, tmp)
    base = results["ktrans build"]
    print(f"ResNet-50, whole process, median of {args.runs} runs:")
    for label, seconds in results.items():
        ratio = "" if label == "ktrans build" else f"  ({seconds / base:.1f}x ktrans)"
        print(f"  {label:34s} {seconds:6.2f} s{ratio}")


if __name__ == "__main__":
    main()
