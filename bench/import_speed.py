"""How fast is `ktrans import`? (issue 13 §3: ResNet50's .keras, 100 MB of weights,
under 2 s as a whole process.)

1. keras.applications.ResNet50(weights=None) saved as .keras by Keras (once; Keras is
   needed here, not by the importer), or an existing file given as the argument.
2. `ktrans import R.keras -o R.kdl --weights-out R.npz` as a whole process (python
   start-up included), median of 7 runs, each writing new files; then without
   --weights-out. The load average is printed with the figures (the machine is shared).
3. Where the time goes, in-process: imports, reading and writing the .kdl text (with
   its check), reading the weights, writing the .npz.

Run: .venv/bin/python bench/import_speed.py [MODEL.keras]
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resnet50(directory: Path) -> Path:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    path = directory / "ResNet50.keras"
    keras.applications.ResNet50(weights=None).save(str(path))
    return path


def whole_process(source: Path, out: Path, runs: int, weights: bool) -> float:
    times = []
    for i in range(runs + 1):
        cmd = [sys.executable, "-m", "transpiler", "import", str(source)]
        cmd += ["-o", str(out / f"run{i}.kdl")]
        if weights:
            cmd += ["--weights-out", str(out / f"run{i}.npz")]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        if i:  # the first run warms the page cache and lark's parser cache
            times.append(time.perf_counter() - start)
        for f in out.glob(f"run{i}.*"):
            f.unlink()
    return statistics.median(times)


BREAKDOWN = """
import sys, time
t0 = time.perf_counter()
from transpiler.importer import import_keras
from transpiler.importer.weights import write_npz
t1 = time.perf_counter()
imported = import_keras(sys.argv[1])
t2 = time.perf_counter()
arrays = imported.weights()
t3 = time.perf_counter()
write_npz(arrays, sys.argv[2])
t4 = time.perf_counter()
print(f"imports {t1 - t0:.2f} s, .kdl text and its check {t2 - t1:.2f} s, "
      f"weights read {t3 - t2:.2f} s, .npz written {t4 - t3:.2f} s")
"""


def breakdown(source: Path, out: Path) -> str:
    cmd = [sys.executable, "-c", BREAKDOWN, str(source), str(out / "breakdown.npz")]
    return subprocess.run(cmd, check=True, capture_output=True).stdout.decode().strip()


def main() -> None:
    compileall.compile_dir(ROOT / "transpiler", quiet=1)  # as pip install does
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        source = Path(sys.argv[1]) if len(sys.argv) > 1 else resnet50(out)
        size = source.stat().st_size / 1e6
        print(f"{source.name}: {size:.1f} MB; load average {os.getloadavg()[0]:.2f}")
        with_weights = whole_process(source, out, 7, weights=True)
        text_only = whole_process(source, out, 7, weights=False)
        print(f"ktrans import -o R.kdl --weights-out R.npz: {with_weights:.2f} s (median of 7)")
        print(f"ktrans import -o R.kdl:                     {text_only:.2f} s (median of 7)")
        print(breakdown(source, out))
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
