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
        check_input(info, tuple(array.shape), array.dtype)
        want_dtype = _ORT_TO_NUMPY.get(info.type)
        if want_dtype is not None and array.dtype != want_dtype:
            array = array.astype(want_dtype)
        out[name] = array
    return out


def check_input(info, shape: tuple, dtype: np.dtype) -> None:
    """An array's shape and dtype (from an .npy header, before it is read) against the
    model input `info` (onnxruntime's NodeArg): rank, fixed dims, a castable dtype."""
    name, want = info.name, info.shape
    if len(shape) != len(want) or any(isinstance(d, int) and d != a for d, a in zip(want, shape)):
        shown = "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in want) + ")"
        _fail(f"input '{name}': expected shape {shown}, got {tuple(shape)}")
    want_dtype = _ORT_TO_NUMPY.get(info.type)
    castable = want_dtype is None or np.can_cast(dtype, want_dtype, casting="same_kind")
    if not castable:
        _fail(f"input '{name}': expected {np.dtype(want_dtype).name}, got {dtype.name}")


def check_external_data(model, path: str | Path) -> None:
    """Every tensor of `model` (loaded from `path`) that keeps its data in another file
    must name a regular file inside the model's folder, large enough for the bytes it
    claims: never an absolute path, `..`, a device, a FIFO or a link out of the folder.
    onnxruntime refuses the first two itself; this refuses the rest before it reads."""
    import os
    import stat

    from onnx import TensorProto

    folder = os.path.realpath(Path(path).parent)
    for tensor in _tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {_text(e.key): _text(e.value) for e in tensor.external_data}
        location = info.get("location", "")
        where = f"{path}: tensor '{_text(tensor.name)}' keeps its data in '{location}'"
        target = os.path.realpath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            _fail(f"{where}, outside the model's folder")
        try:
            st = os.stat(target)
        except OSError as e:
            _fail(f"{where}, which cannot be read: {e.strerror or e}")
        if not stat.S_ISREG(st.st_mode):
            _fail(f"{where}, which is not a regular file")
        try:
            end = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        except ValueError:
            _fail(f"{where} with an offset or length that is not a number")
        if end > st.st_size:
            _fail(f"{where}, up to byte {end:,}, but that file has {st.st_size:,} bytes")


def _text(value) -> str:
    """A protobuf string field: bytes when the file holds invalid UTF-8."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _tensors(model):
    """Every TensorProto of a model: initializers, sparse initializers, node attributes,
    in subgraphs and functions too (iteratively: subgraphs can nest deep)."""
    graphs = [model.graph]
    nodes = [n for f in model.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            g = graphs.pop()
            yield from g.initializer
            for sparse in g.sparse_initializer:
                yield sparse.values
                yield sparse.indices
            nodes.extend(g.node)
            continue
        node = nodes.pop()
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                graphs.append(a.g)
            graphs.extend(a.graphs)


class RunFailure(Exception):
    """onnxruntime refused to run the model on the given inputs (`message` says why)."""

    def __init__(self, message: str, node: str | None) -> None:
        super().__init__(message)
        self.message, self.node = message, node


def run_session(session, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
    """`session.run`, with onnxruntime's own failure on these inputs (a sequence too short
    for a Conv, say) raised as a RunFailure naming the op and node, and not logged to
    stderr by onnxruntime as well."""
    import re

    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # the failure is reported once, by the caller
    try:
        return session.run(names, feeds, options)
    except Exception as e:
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        text = " ".join(str(e).split())
        found = re.search(r"running (\w+) node\. Name:'([^']*)' Status Message: (.*)", text)
        if found is None:
            raise RunFailure(text.split(" : ")[-1], None) from None
        op, node, why = found.groups()
        layer = f" of the layer '{node.split('/')[0]}'" if "/" in node else ""
        raise RunFailure(f"the {op} node '{node}'{layer} fails: {why.strip()}", node) from None


def run_failure_error(failure: RunFailure) -> KdlErrors:
    """The input error (exit 1) for a model that cannot run on the inputs given."""
    return KdlErrors(
        [
            KdlError(
                None,
                f"onnxruntime cannot run the model on these inputs: {failure.message}",
                "check the inputs' shapes: a sequence or image shorter than a layer's "
                "kernel (or pooling window) fails",
            )
        ]
    )
