"""The onnxruntime engine: ktrans's training graph, one `run` per step.

The bundle holds the training step (`<Model>.train.onnx`: the batch, the step count, the
learning rate and the whole state in; the loss, the metric statistics and `new:<name>`
for every parameter, buffer and optimizer slot out), the evaluation model (inference
mode, loss and metrics, no update), the inference model and the initial state.

`DeviceState` keeps the state on the device in two sets of buffers: a step binds set A
as inputs and set B as the `new:` outputs (IO binding), runs once, and `commit` swaps
them, so weights never visit the host between steps. `HostState` (--no-io-binding)
copies the whole state in and out every step, for comparison. Both give the loop the
same interface, and so does `OrtEngine` (the engine interface of the package's
docstring). onnxruntime is imported when an engine opens, not before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .cuda import cuda_problem, fell_back
from .errors import TrainingError
from .files import write_bytes

NEW = "new:"  # the training graph's output prefix for a state entry's next value
SLOT = "slot:"  # the prefix of an optimizer slot's name: slot:<parameter>:<name>


def open_sessions(folder: Path, files: dict, device: str, threads: int | None = None):
    """(the onnxruntime module, the step session, the evaluation session); `threads`:
    onnxruntime's intra-op threads (default: its own choice, one per core)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise TrainingError(
            "onnxruntime is not installed: pip install onnxruntime "
            "(onnxruntime-gpu for --device cuda)"
        ) from None
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        problem = cuda_problem(ort)  # one line naming what is missing, no log wall
        if problem:
            raise TrainingError(f"--device cuda: {problem}")
        providers = ["CUDAExecutionProvider"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    sessions = []
    for key in ("train", "eval"):
        path = Path(folder) / files[key]
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises many types
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TrainingError(f"cannot load {path}: {message}") from e
        problem = fell_back(device == "cuda", session.get_providers(), ort)
        if problem:
            raise TrainingError(f"--device cuda: {problem}")
        sessions.append(session)
    return ort, sessions[0], sessions[1]


def host_value(array) -> float | np.ndarray:
    """A loss or metric output as the loop keeps it: a float, or a copy of the array."""
    array = np.asarray(array)
    return float(array) if array.ndim == 0 else np.array(array, np.float32)


class DeviceState:
    """The state on the device in two buffer sets, swapped every step (module
    docstring). `names`: {"step": the step-count input, "learning_rate": the
    learning-rate input}."""

    def __init__(self, ort, train, evaluate, state: dict, device: str, names: dict) -> None:
        self.ort, self.train, self.eval, self.device = ort, train, evaluate, device
        self.step_input, self.lr_input = names["step"], names["learning_rate"]
        self.names = list(state)
        new = ort.OrtValue.ortvalue_from_shape_and_type
        first = {n: self._on_device(a) for n, a in state.items()}
        second = {n: new(a.shape, np.float32, device, 0) for n, a in state.items()}
        self.sets = [first, second]
        self.results = self._results(train)
        self.bindings = [self._bind(0), self._bind(1)]
        self.current = 0
        self.eval_results = self._results(evaluate)
        self.eval_bindings: dict = {}

    def _on_device(self, array: np.ndarray):
        array = np.ascontiguousarray(array, np.float32)
        return self.ort.OrtValue.ortvalue_from_numpy(array, self.device, 0)

    def _results(self, session) -> dict:
        """Preallocated host buffers for the losses and metric statistics (scalars, and
        confusion counts per threshold)."""
        new = self.ort.OrtValue.ortvalue_from_shape_and_type
        outputs = [o for o in session.get_outputs() if not o.name.startswith(NEW)]
        return {o.name: new(list(o.shape), np.float32, "cpu", 0) for o in outputs}

    def _bind(self, i: int):
        binding = self.train.io_binding()
        for name in self.names:
            binding.bind_ortvalue_input(name, self.sets[i][name])
            binding.bind_ortvalue_output(NEW + name, self.sets[1 - i][name])
        for name, value in self.results.items():
            binding.bind_ortvalue_output(name, value)
        return binding

    def step(self, batch: dict, step: int, lr: float) -> dict:
        """One training step into the other set; `commit` makes it the current one."""
        binding = self.bindings[self.current]
        for name, array in batch.items():
            binding.bind_cpu_input(name, array)
        binding.bind_cpu_input(self.step_input, np.array(step, np.int64))
        binding.bind_cpu_input(self.lr_input, np.array(lr, np.float32))
        self.train.run_with_iobinding(binding)
        return {name: host_value(v.numpy()) for name, v in self.results.items()}

    def commit(self) -> None:
        self.current = 1 - self.current

    def evaluate(self, batch: dict) -> dict:
        """Losses and metric statistics of a batch in inference mode, current state."""
        binding = self.eval_bindings.get(self.current)
        if binding is None:
            binding = self.eval.io_binding()
            current = self.sets[self.current]
            for i in self.eval.get_inputs():
                if i.name in current:
                    binding.bind_ortvalue_input(i.name, current[i.name])
            for name, value in self.eval_results.items():
                binding.bind_ortvalue_output(name, value)
            self.eval_bindings[self.current] = binding
        for name, array in batch.items():
            binding.bind_cpu_input(name, array)
        self.eval.run_with_iobinding(binding)
        return {name: host_value(v.numpy()) for name, v in self.eval_results.items()}

    def to_host(self) -> dict[str, np.ndarray]:
        return {n: np.array(v.numpy()) for n, v in self.sets[self.current].items()}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Overwrites the named parts of the current state."""
        for name, array in arrays.items():
            self.sets[self.current][name].update_inplace(np.ascontiguousarray(array, np.float32))


class HostState:
    """DeviceState's interface over numpy arrays and session.run (--no-io-binding)."""

    def __init__(self, train, evaluate, state: dict, names: dict) -> None:
        self.train, self.eval = train, evaluate
        self.step_input, self.lr_input = names["step"], names["learning_rate"]
        self.state = {n: np.array(a, np.float32) for n, a in state.items()}
        self.results = [o.name for o in train.get_outputs() if not o.name.startswith(NEW)]
        self.fetches = self.results + [NEW + n for n in self.state]
        self.eval_outputs = [o.name for o in evaluate.get_outputs()]
        self.eval_state = [i.name for i in evaluate.get_inputs() if i.name in state]
        self.pending: dict | None = None

    def step(self, batch: dict, step: int, lr: float) -> dict:
        feeds = {**batch, **self.state}
        feeds[self.step_input] = np.array(step, np.int64)
        feeds[self.lr_input] = np.array(lr, np.float32)
        values = self.train.run(self.fetches, feeds)
        k = len(self.results)
        self.pending = dict(zip(self.state, values[k:]))
        return {name: host_value(v) for name, v in zip(self.results, values[:k])}

    def commit(self) -> None:
        self.state = self.pending

    def evaluate(self, batch: dict) -> dict:
        feeds = {**batch, **{n: self.state[n] for n in self.eval_state}}
        values = self.eval.run(self.eval_outputs, feeds)
        return {name: host_value(v) for name, v in zip(self.eval_outputs, values)}

    def to_host(self) -> dict[str, np.ndarray]:
        return {n: a.copy() for n, a in self.state.items()}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            self.state[name] = np.array(array, np.float32)


class Exporter:
    """Writes the inference model with given weights: a copy of the bundle's inference
    .onnx with each weight's bytes overwritten at the ranges ktrans recorded (`offsets`:
    {weight: [offset, size]}, the bundle's FILES["offsets"] JSON), so no onnx package is
    needed. Checks on creation that the ranges hold the initial weights."""

    def __init__(self, path: Path, offsets: dict, initial: dict[str, np.ndarray]) -> None:
        self.model = Path(path).read_bytes()
        self.offsets = offsets
        for name, (offset, size) in offsets.items():
            raw = np.ascontiguousarray(initial[name], "<f4").tobytes()
            if len(raw) != size or self.model[offset : offset + size] != raw:
                raise TrainingError(
                    f"{Path(path).name} does not match the initial state: regenerate "
                    "the bundle with ktrans codegen --target train"
                )

    def write(self, path: Path, weights: dict[str, np.ndarray]) -> None:
        data = bytearray(self.model)
        for name, (offset, size) in self.offsets.items():
            data[offset : offset + size] = np.ascontiguousarray(weights[name], "<f4").tobytes()
        write_bytes(path, bytes(data))


class OrtEngine:
    """The engine interface over the bundle's files (`files`: {"train", "eval",
    "inference", "init", "offsets"} file names in `folder`). `names`: the training
    graph's own inputs and output ({"step", "learning_rate", "loss"})."""

    name = "onnxruntime"
    export_suffix = ".onnx"

    def __init__(
        self,
        folder: Path,
        files: dict,
        names: dict,
        device: str = "cpu",
        io_binding: bool = True,
        threads: int | None = None,
    ) -> None:
        self.folder, self.files, self.names = Path(folder), files, names
        self.device, self.io_binding = device, io_binding
        ort, train, evaluate = open_sessions(self.folder, files, device, threads)
        infos = {i.name: i for i in train.get_inputs()}
        state_names = [o.name[len(NEW) :] for o in train.get_outputs() if o.name.startswith(NEW)]
        self.shapes = {name: tuple(infos[name].shape) for name in state_names}
        initial = self._initial_state()
        offsets = self._offsets(initial)
        self.weight_names = list(offsets)
        self.exporter = Exporter(self.folder / files["inference"], offsets, initial)
        if io_binding:
            self._state = DeviceState(ort, train, evaluate, initial, device, names)
        else:
            self._state = HostState(train, evaluate, initial, names)

    @classmethod
    def from_args(cls, args, folder: Path, files: dict, names: dict) -> OrtEngine:
        """The engine for the flags --device and --no-io-binding."""
        return cls(folder, files, names, args.device, io_binding=not args.no_io_binding)

    def _offsets(self, initial: dict) -> dict:
        path = self.folder / self.files["offsets"]
        try:
            offsets = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise TrainingError(f"cannot read {path}: {e}; regenerate the bundle") from None
        if not isinstance(offsets, dict) or not set(offsets) <= set(initial):
            raise TrainingError(
                f"{path.name} does not fit {self.files['init']}: regenerate the bundle"
            )
        return offsets

    def _initial_state(self) -> dict[str, np.ndarray]:
        path = self.folder / self.files["init"]
        try:
            with np.load(path, allow_pickle=False) as archive:
                state = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError) as e:
            raise TrainingError(f"cannot read {path}: {e}; regenerate the bundle") from None
        if sorted(state) != sorted(self.shapes) or any(
            tuple(state[n].shape) != shape for n, shape in self.shapes.items()
        ):
            raise TrainingError(
                f"{path.name} does not fit {self.files['train']}: regenerate the bundle"
            )
        return state

    # the engine interface

    def step(self, batch: dict, step: int, learning_rate: float) -> dict:
        return self._state.step(batch, step, learning_rate)

    def commit(self) -> None:
        self._state.commit()

    def evaluate(self, batch: dict) -> dict:
        return self._state.evaluate(batch)

    def state(self) -> dict[str, np.ndarray]:
        return self._state.to_host()

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self._state.load(arrays)

    def weights(self) -> dict[str, np.ndarray]:
        state = self._state.to_host()
        return {name: state[name] for name in self.weight_names}

    def export(self, path: Path, weights: dict[str, np.ndarray]) -> None:
        self.exporter.write(path, weights)

    def moving_averages(self) -> dict[str, np.ndarray]:
        """{parameter: its moving average}, for an optimizer with use_ema (the slot
        `slot:<parameter>:average`): what Keras's finalize_variable_values assigns."""
        state = self._state.to_host()
        slots = {name: f"{SLOT}{name}:average" for name in self.weight_names}
        return {name: state[slot] for name, slot in slots.items() if slot in state}

    def fingerprint(self) -> str:
        return hashlib.sha256((self.folder / self.files["train"]).read_bytes()).hexdigest()

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "device": self.device,
            "io_binding": self.io_binding,
        }
