"""Whether a model's weights fit in memory, asked before any is allocated.

`Dense(100000)` on `float32[100000]` is a valid model (`check` accepts it) whose kernel
is 37 GiB. Building it would end in a MemoryError deep in numpy, or in the kernel's OOM
killer. Instead, `check_weights_fit` adds up the weights' bytes from their shapes and
compares them with the memory this process may still use: the system's available memory,
the container's (cgroup v2) limit, and the address-space limit (`ulimit -v`), whichever
is least. Over it is an input error naming the largest layer and the sizes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from transpiler.errors import KdlError, KdlErrors

FLOAT32 = 4


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def weight_bytes(graph) -> tuple[int, tuple]:
    """(bytes of all weights as float32, (bytes, layer, weight name, shape) of the largest)."""
    total, largest = 0, (0, None, "", ())
    for layer in graph.layers:
        for w in layer.weights or []:
            size = math.prod(w.shape) * FLOAT32
            total += size
            if size > largest[0]:
                largest = (size, layer, w.name, tuple(w.shape))
    return total, largest


def check_weights_fit(graph, what: str = "building") -> None:
    """Raises KdlErrors when the weights of `graph` (with room for a copy of the largest,
    as the lowering may transpose it) exceed the memory available."""
    total, (size, layer, name, shape) = weight_bytes(graph)
    if total == 0:
        return
    available = available_memory()
    need = total + size
    if available is None or need <= available:
        return
    raise KdlErrors(
        [
            KdlError(
                getattr(layer, "span", None) or getattr(graph, "span", None),
                f"{what} {graph.name} needs {gib(total)} for its weights, and this process "
                f"has {gib(available)} of memory: layer '{layer.name}' alone has a {name} "
                f"of shape {shape} ({gib(size)})",
                "make the layer smaller (fewer units, a smaller input, pooling first)",
            )
        ]
    )


def available_memory() -> int | None:
    """Bytes this process may still allocate, as far as the system tells; None if unknown."""
    limits = [_mem_available(), _cgroup_room(), _address_space_room()]
    known = [n for n in limits if n is not None]
    return min(known) if known else None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_room() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return soft
