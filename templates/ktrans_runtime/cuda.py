"""Can onnxruntime run on CUDA here? If not, one line that says what is missing.

onnxruntime-gpu reports a CUDA that cannot run by printing a dozen lines (its library
preloader's "Failed to load ..." lines, then C++ log lines) and silently falling back to
the CPU. `cuda_problem` asks the same questions quietly, so that `--device cuda` can stop
with one line naming the missing pieces and the CUDA and cuDNN major versions the
installed onnxruntime-gpu was built for:

    problem = cuda_problem(onnxruntime)
    if problem:
        raise SystemExit(f"error: --device cuda: {problem}")
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import re

#: onnxruntime-gpu releases since 1.19 are built against cuDNN 9 (CUDA 12 and 13 builds).
CUDNN_MAJOR = "9"
DRIVER_LIBRARY = "libcuda.so.1"


def required_versions(ort) -> tuple[str | None, str | None]:
    """(CUDA major, cuDNN major) the installed onnxruntime was built for, where known."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return None, None
    cuda = getattr(info, "cuda_version", None)
    if not cuda:
        return None, None
    return str(cuda).split(".")[0], CUDNN_MAJOR


def quiet_logs(ort) -> None:
    """Only fatal messages from onnxruntime's C++ logger: a CUDA provider that cannot load
    logs an error and a warning before the session falls back, and we say it better."""
    setter = getattr(ort, "set_default_logger_severity", None)
    if setter is not None:
        setter(4)


def preload(ort) -> list[str]:
    """Loads the CUDA and cuDNN libraries onnxruntime looks for (`preload_dlls`, where this
    onnxruntime has it), with its printing captured; returns the libraries it could not
    load."""
    loader = getattr(ort, "preload_dlls", None)
    if loader is None:
        return []
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            loader()
        except Exception as e:  # its own failure is one more thing missing
            print(f"Failed to load CUDA libraries: {e}")
    missing = re.findall(r"Failed to load (\S+?):", printed.getvalue())
    return list(dict.fromkeys(missing))


def has_driver() -> bool:
    try:
        ctypes.CDLL(DRIVER_LIBRARY)
    except OSError:
        return False
    return True


def cuda_problem(ort) -> str | None:
    """None when onnxruntime has a CUDA provider whose libraries load; else why not."""
    quiet_logs(ort)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            f"this onnxruntime ({ort.__version__}) has no CUDA provider: install "
            "onnxruntime-gpu (Linux x86_64), or use --device cpu"
        )
    cuda, cudnn = required_versions(ort)
    needs = f"onnxruntime-gpu {ort.__version__} needs CUDA {cuda}.x and cuDNN {cudnn}.x"
    if cuda is None:
        needs = f"onnxruntime-gpu {ort.__version__} needs the CUDA and cuDNN it was built for"
    if not has_driver():
        return f"no NVIDIA driver ({DRIVER_LIBRARY} not found); {needs}"
    missing = preload(ort)
    if missing:
        return f"{needs}; not found: {', '.join(missing)}"
    return None


def fell_back(needs_cuda: bool, providers: list[str], ort) -> str | None:
    """The message for a session that was asked for CUDA and got the CPU anyway (the
    libraries loaded, but the provider still failed: an unsupported GPU, say)."""
    if not needs_cuda or "CUDAExecutionProvider" in providers:
        return None
    cuda, cudnn = required_versions(ort)
    return (
        "onnxruntime could not start its CUDA provider and fell back to the CPU "
        f"(it needs CUDA {cuda}.x and cuDNN {cudnn}.x and a supported GPU)"
    )
