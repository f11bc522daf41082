"""How fast is `ktrans check`? (issue: front end, section 7)

1. `ktrans check examples/resnet50.kdl` as a whole process (python start-up included),
   median of several runs, after one warm-up run (the parser loads from the parse
   tables shipped in the package, grammar/kdl_parser.json; nothing is cached on disk).
2. Parse + check of generated sequential models of 500 ... 5,000 layers, in-process, to
   show the cost grows linearly (time per layer stays flat).

Run: .venv/bin/python bench/check_speed.py
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def whole_process(path: Path, runs: int = 7) -> float:
    cmd = [sys.executable, "-m", "transpiler", "check", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up: the OS's file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def generated_model(layers: int) -> str:
    body = ["model Deep {", "    input x: float32[64]"]
    for i in range(layers):
        body.append("    Dense(64, activation=relu)" if i % 2 == 0 else "    Dropout(0.1)")
    body.append("}")
    return "\n".join(body) + "\n"


def in_process(layers: int, runs: int = 3) -> float:
    from transpiler.graph import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deep.kdl"
        path.write_text(generated_model(layers))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            load(str(path))
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {platform.python_version()}"
    )
    t = whole_process(ROOT / "examples/resnet50.kdl")
    print(f"ktrans check examples/resnet50.kdl (whole process, median of 7): {t:.3f} s")
    in_process(100)  # warm imports
    print("layers  seconds  ms/layer")
    for n in (500, 1000, 2000, 5000):
        s = in_process(n)
        print(f"{n:6d}  {s:7.3f}  {1000 * s / n:8.3f}")


if __name__ == "__main__":
    main()
