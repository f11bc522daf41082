"""onnxruntime sessions on the CPU or a CUDA GPU, and checked feeding of inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transpiler.errors import KdlError, KdlErrors

_ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def providers_for(device: str) -> list[str]:
    """The execution providers for `cpu` or `cuda`; CUDA that can't run is an error of one
    line naming what is missing (transpiler.templates.ktrans_runtime.cuda)."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        _fail(f"unknown device '{device}'", "use --device cpu or --device cuda")
    from transpiler.templates.ktrans_runtime.cuda import cuda_problem

    problem = cuda_problem(ort)
    if problem:
        _fail(f"--device cuda: {problem}")
    return ["CUDAExecutionProvider"]


def create_session(model, device: str = "cpu", threads: int | None = None):
    """An InferenceSession for a ModelProto, bytes or a path; checks CUDA really runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, (str, Path)):
        model = str(model)
    providers = providers_for(device)
    try:
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as e:
        _fail(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}")
    from transpiler.templates.ktrans_runtime.cuda import fell_back

    problem = fell_back(device == "cuda", session.get_providers(), ort)
    if problem:
        _fail(f"--device cuda: {problem}")
    return session


def check_feeds(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Names, ranks, fixed dims and dtypes of `feeds` against the model's inputs."""
    expected = {i.name: i for i in session.get_inputs()}
    unknown = sorted(set(feeds) - set(expected))
    if unknown:
        from transpiler.errors import suggest

        _fail(
            f"the model has no input '{unknown[0]}'",
            suggest(unknown[0], expected) or f"its inputs: {', '.join(expected)}",
        )
    missing = [n for n in expected if n not in feeds]
    if missing:
        _fail(f"missing input '{missing[0]}'", f"pass --input {missing[0]}=FILE.npy")
    out = {}
    for name, info in expected.items():
        array = np.asarray(feeds[name])
        want_dtype = _ORT_TO_NUMPY.get(info.type)
        shape = info.shape
        if array.ndim != len(shape) or any(
            isinstance(d, int) and d != a for d, a in zip(shape, array.shape)
        ):
            want = "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + ")"
            _fail(f"input '{name}': expected shape {want}, got {tuple(array.shape)}")
        if want_dtype is not None and array.dtype != want_dtype:
            same_kind = np.can_cast(array.dtype, want_dtype, casting="same_kind")
            if not same_kind:
                _fail(
                    f"input '{name}': expected {np.dtype(want_dtype).name}, got {array.dtype.name}"
                )
            array = array.astype(want_dtype)
        out[name] = array
    return out
