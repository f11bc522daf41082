"""Running ktrans on hostile input in a child process that cannot take the machine down.

`run_capped(argv)` runs `ktrans ARGV` in a child Python with an address-space cap and a
CPU-time cap (`resource.setrlimit`), a wall-clock timeout, one thread per numeric
library, and returns what it did: exit code, output, CPU seconds (from `os.wait4`, so
runs in parallel threads each get their own) and peak resident memory (the child's own
VmHWM).
A regression then fails a test instead of swapping or hanging the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
GiB = 1 << 30


@dataclass
class Outcome:
    code: int | None  # None: killed after the wall-clock timeout
    stdout: str
    stderr: str
    cpu_s: float
    peak_mib: float
    wall_s: float

    def __str__(self) -> str:
        return (
            f"exit {self.code}, {self.cpu_s:.2f} s CPU, {self.wall_s:.2f} s wall, "
            f"{self.peak_mib:.0f} MiB peak\n--- stdout\n{self.stdout[-2000:]}\n"
            f"--- stderr\n{self.stderr[-3000:]}"
        )


# The child: set the caps, run ktrans in this process, and report the peak resident memory
# of this process image (VmHWM), which, unlike getrusage's maxrss, does not start from
# the parent's size at fork.
_CHILD = """
import resource, runpy, sys
address_space, cpu, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
sys.argv = ["ktrans", *sys.argv[4:]]
try:
    runpy.run_module("transpiler", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")))
"""


def run_capped(
    argv: list[str],
    cwd: Path,
    *,
    address_space: int = 4 * GiB,
    cpu_s: int = 60,
    wall_s: float = 180,
) -> Outcome:
    """`ktrans ARGV` in `cwd` under the caps."""
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    environment.pop("KTRANS_DEBUG", None)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "peak"
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        command = [sys.executable, "-c", _CHILD, str(address_space), str(cpu_s), str(report)]
        start = time.monotonic()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            child = subprocess.Popen(
                [*command, *argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                stderr=stderr, env=environment,
            )  # fmt: skip
            code = None
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    code = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - start > wall_s:
                    child.kill()
                    _, _, usage = os.wait4(child.pid, 0)
                    break
                time.sleep(0.02)
            child.returncode = -9 if code is None else code  # reaped here, not by Popen
        peak = report.read_text().split()[1] if report.exists() else "0"
        return Outcome(
            code,
            out.read_text("utf-8", "replace"),
            err.read_text("utf-8", "replace"),
            usage.ru_utime + usage.ru_stime,
            int(peak) / 1024,  # VmHWM is in kB
            time.monotonic() - start,
        )
