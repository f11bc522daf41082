"""The PyTorch engine: the generated torch.nn.Module, trained the Keras way, in one
process or data parallel under torchrun (the engine interface of the package's
docstring).

A training step, as PyTorch writes it: the batch's arrays become tensors on the
device; the model runs in training mode (`outputs, masks = model(*inputs,
return_masks=True)`, under autocast for --precision bfloat16/float16); the train
block's loss (torch_losses: Keras's losses, reductions, masks, loss weights and
regularizers); `loss.backward()`, through DistributedDataParallel when several
processes train (torch_dist); the metric statistics (torch_metrics). `commit()` then
applies the optimizer's update (torch_optim: Keras's formulas): a NaN loss, which the
loop stops on before committing, changes no parameter.

The state (checkpoints): the weights in Keras's layout, keyed "<layer>/<weight>" as
`model.keras_weights()` gives them (parameters and moving statistics), the optimizer's
slots (`slot:<layer>/<weight>:<name>`, shaped as the module's parameters) and, with
--precision float16, the loss scale. Randomness (Dropout, noise layers) is drawn from
a generator seeded by (seed, step, rank) before every step, so a resumed run draws what
the uninterrupted one drew without keeping a generator's state.

The trained model is the inference `<Model>.trained.onnx` (torch_files: the Keras-layout
weights put into the bundle's ONNX model, no onnx package needed), or the module's
state_dict (`.pt`) for a bundle without one; when training ends the state_dict and
Keras's files (`.weights.npz`, `.weights.h5`) are written beside it.

torch is imported when the engine is made, not with this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from pathlib import Path

import numpy as np

from .errors import TrainingError
from .torch_dist import AgreedStop, DistributedCounts, Processes, test_kill
from .torch_files import TrainedFiles, initial_weights, write_state_dict
from .torch_losses import Counts, TrainingLoss
from .torch_metrics import batch_statistics
from .torch_optim import KerasOptimizer

PRECISIONS = ("float32", "bfloat16", "float16")
LOSS_SCALE = "ktrans:loss_scale"  # float16: [the scale, good steps since it changed]
FIRST_SCALE, GROWTH_STEPS = 2.0**15, 2000  # Keras's LossScaleOptimizer defaults


def import_torch():
    """torch, or a one-line error naming what to install."""
    try:
        import torch
    except ImportError:
        raise TrainingError(
            "this script trains with PyTorch, which is not installed: pip install torch"
        ) from None
    return torch


def compiled(script: dict) -> dict:
    """The run's and the engine's settings (loop.TrainingRun, TorchEngine) from the
    training script's literals (`script`: its globals): MODEL, TRAIN_BLOCK, SEED, FIT,
    LOSS, REGULARIZERS, OPTIMIZER (whose learning_rate each step is given), LOSSES,
    METRIC_PLAN, CALLBACKS, FILES and HERE."""
    files, optimizer = script["FILES"], script["OPTIMIZER"]
    return {
        "model": script["MODEL"],
        "train_block": script["TRAIN_BLOCK"],
        "seed": script["SEED"],
        "fit": script["FIT"],
        "loss": script["LOSS"],
        "regularizers": script["REGULARIZERS"],
        "optimizer": optimizer,
        "losses": script["LOSSES"],
        "metric_plan": script["METRIC_PLAN"],
        "learning_rate": optimizer["learning_rate"],
        "callbacks": script["CALLBACKS"],
        "trained": files["trained"],
        "keras": Path(script["HERE"]) / files["keras"],
    }


def add_flags(parser) -> None:
    """The torch engine's own flags, added to the runtime's (cli.parser)."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="autocast on CUDA: bfloat16 or float16 (with a dynamic loss scale)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads (torch.set_num_threads)"
    )
    parser.add_argument(
        "--collective-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="under torchrun: seconds a process waits for the others (default 300)",
    )


class TorchEngine:
    """`model`: the generated module with its initial weights; `spec`: the script's
    compiled settings, of which the engine reads {"loss", "regularizers", "optimizer",
    "losses", "metric_plan"}; `folder`, `files`: the bundle's folder and FILES (the
    files the trained model is exported with)."""

    name = "torch"

    def __init__(
        self,
        model,
        spec: dict,
        args,
        processes: Processes | None = None,
        folder: Path | None = None,
        files: dict | None = None,
    ):
        torch = self.torch = import_torch()
        self.spec, self.args = spec, args
        self.processes = processes or Processes()
        self.device = self._device(args)
        self.precision = getattr(args, "precision", "float32")
        if self.precision != "float32" and self.device.type != "cuda":
            raise TrainingError(
                f"--precision {self.precision} needs --device cuda (autocast on the "
                "CPU would not be Keras's float32 training); use --precision float32"
            )
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        files = files or {}
        if folder is not None and files.get("init"):
            self.exported = TrainedFiles(folder, files, initial_weights(folder, files))
        else:
            self.exported = TrainedFiles.none()
        self.export_suffix = ".onnx" if self.exported.exporter else ".pt"
        self.model = model.to(self.device)
        self.inputs = list(model.input_names)
        self.outputs = [o for o in model.output_names if o in spec["loss"]]
        self.params = {key: p for key, p in self._places() if isinstance(p, torch.nn.Parameter)}
        self.trainable = {k: p for k, p in self.params.items() if p.requires_grad}
        self.loss = TrainingLoss(spec["loss"], spec["regularizers"])
        self.optimizer = KerasOptimizer(spec["optimizer"], self.trainable)
        self.losses = spec["losses"]  # {log key: the name its value is reported under}
        self.scale = None
        if self.precision == "float16":
            self.scale = torch.tensor([FIRST_SCALE, 0.0], device=self.device)
        self.net = self.plain = _trained_outputs(self.model, self.outputs)
        self.seed, self.pending, self.rows = 0, None, 0
        self.committed, self.synced = 0, -1
        self.agreed = AgreedStop(self.processes.rank, self.processes.world)
        names = [*self.model.keras_weights(), *self.optimizer.state()]
        if self.scale is not None:
            names.append(LOSS_SCALE)
        self.shapes = {name: tuple(a.shape) for name, a in self._host(names).items()}

    def _device(self, args):
        torch = self.torch
        if args.device == "cpu":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise TrainingError(
                "--device cuda: this PyTorch sees no CUDA device (a CPU-only build, or "
                "no driver); use --device cpu"
            )
        index = self.processes.local_rank
        if index >= torch.cuda.device_count():
            raise TrainingError(
                f"--device cuda: local rank {index} has no GPU of its own "
                f"({torch.cuda.device_count()} visible)"
            )
        torch.cuda.set_device(index)
        return torch.device("cuda", index)

    def _places(self):
        """("<layer>/<weight>", the tensor holding it) for every Keras weight."""
        places = inspect.getmodule(type(self.model)).keras_weight_places
        for key, module, name, _ in places():
            yield key, getattr(self.model.get_submodule(module), name)

    # ------------------------------------------------------------ starting

    def start(self, run) -> None:
        """Joins the other processes and wraps the model for DDP; `run.seed` seeds
        the per-step generators."""
        self.seed = run.seed
        run.on_end(self.end_files)
        if not self.processes.distributed:
            return
        self.processes.join(self.device.type, self.args.collective_timeout)
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = DistributedDataParallel(
            self.net,
            device_ids=ids,
            # the layers of outputs without a loss get no gradient: DDP must know
            find_unused_parameters=len(self.outputs) < len(self.model.output_names),
        )

    def stop_agreed(self, interrupt):
        """The interrupt every process agrees on: a signal that reached any process
        stops all of them after the same step (torch_dist)."""
        if not self.processes.distributed:
            return interrupt
        self.agreed.interrupt = interrupt
        return self.agreed

    def shared(self, data):
        """`data` as this process reads it: its share of each batch (torch_dist)."""
        return self.processes.shared(data)

    # ------------------------------------------------------------ one step

    def _tensors(self, batch: dict):
        torch = self.torch
        tensors = {}
        for name, array in batch.items():
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            tensors[name] = tensor.to(self.device, non_blocking=True)
        inputs = [tensors[name] for name in self.inputs]
        targets = {o: tensors[f"target:{o}"] for o in self.spec["loss"]}
        return inputs, targets

    def _forward(self, net, inputs):
        """{output: value}, {output: Keras mask or None} of the outputs with a loss."""
        torch = self.torch
        autocast = contextlib.nullcontext()
        if self.precision != "float32":
            autocast = torch.autocast("cuda", dtype=getattr(torch, self.precision))
        with autocast:
            outputs, masks = net(*inputs)
        return dict(zip(self.outputs, outputs)), dict(zip(self.outputs, masks))

    def _counts(self, local_rows: int, rows: int) -> Counts:
        if not self.processes.distributed:
            return Counts()
        return DistributedCounts(self.processes, local_rows, rows)

    def step(self, batch: dict, step: int, learning_rate: float, rows: int | None = None) -> dict:
        """Forward, loss, backward on this process's share of the batch (`rows` rows in
        all processes together; default: this share's); returns the whole batch's losses
        and metric statistics. The update waits for commit()."""
        local_rows = len(next(iter(batch.values())))
        distributed = self.processes.distributed and rows is not None
        rows = self.rows = rows if distributed else local_rows
        self._seed_step(step)
        inputs, targets = self._tensors(batch)
        self.model.train()
        for p in self.trainable.values():
            p.grad = None
        with self.processes.talking(f"step {step + 1}"):
            outputs, masks = self._forward(self.net, inputs)
            counts = self._counts(local_rows, rows)
            loss, per_output = self.loss(outputs, targets, masks, self.params, counts)
            factor = self.processes.world  # DDP averages: the shares' gradients add up
            if self.scale is not None:
                factor = self.scale[0] * factor
            (loss * factor if factor != 1 else loss).backward()
        self.pending = (step, learning_rate)
        return self._report(loss, per_output, outputs, targets, masks, rows, "a step")

    def _seed_step(self, step: int) -> None:
        """The generator of this device (Dropout's, noise layers') seeded for the step
        (not torch.manual_seed: it also queues CUDA's seeding, which costs more than a
        small step)."""
        seed = _step_seed(self.seed, step, self.processes.rank)
        if self.device.type == "cuda":
            self.torch.cuda.default_generators[self.device.index].manual_seed(seed)
        else:
            self.torch.default_generator.manual_seed(seed)

    def commit(self) -> None:
        """The optimizer's update with the step's gradients."""
        step, learning_rate = self.pending
        self.committed += 1
        test_kill(self.processes.rank, self.committed)
        grads = {key: p.grad for key, p in self.trainable.items()}
        if self.scale is not None and not self._unscale(grads):
            return  # float16 overflow: the step is skipped, the scale halved
        self.optimizer.apply(grads, step, learning_rate)

    def _unscale(self, grads: dict) -> bool:
        """float16: the gradients divided by the loss scale; False (and the scale
        halved) when one is not finite, as Keras's LossScaleOptimizer does."""
        torch = self.torch
        present = [g for g in grads.values() if g is not None]
        scale = self.scale
        torch._foreach_div_(present, scale[0])
        finite = all(bool(torch.isfinite(g).all()) for g in present)
        if not finite:
            scale.copy_(torch.stack([scale[0] / 2, scale.new_zeros(())]))
            return False
        scale[1] += 1
        if scale[1] >= GROWTH_STEPS:
            scale.copy_(torch.stack([scale[0] * 2, scale.new_zeros(())]))
        return True

    def evaluate(self, batch: dict) -> dict:
        """The whole batch's losses and metric statistics in inference mode."""
        torch = self.torch
        rows = len(next(iter(batch.values())))
        batch = self.processes.share_batch(batch)
        inputs, targets = self._tensors(batch)
        self.model.eval()
        self._sync_buffers()
        with torch.no_grad():
            outputs, masks = self._forward(self.plain, inputs)
            counts = self._counts(len(inputs[0]), rows)
            loss, per_output = self.loss(outputs, targets, masks, self.params, counts)
        return self._report(loss, per_output, outputs, targets, masks, rows, "evaluation")

    def _sync_buffers(self) -> None:
        """Rank 0's moving statistics on every process, once after each step: DDP
        sends them at the start of a training forward only, and each process's own
        step has changed them since."""
        if not self.processes.distributed or self.synced == self.committed:
            return
        import torch.distributed as dist

        with self.processes.talking("evaluation"):
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)
        self.synced = self.committed

    def _report(self, loss, per_output, outputs, targets, masks, rows, what) -> dict:
        """{name: float or float32 array} for the loop, in one copy from the device
        (and one all_reduce over the processes, with the stop flags)."""
        torch = self.torch
        with torch.no_grad():
            means, counts = batch_statistics(self.spec["metric_plan"], outputs, targets, masks)
            distributed = self.processes.distributed
            scalars = [loss.detach().float()]
            names = list(self.losses.values())
            for key, name in self.losses.items():
                if key != "loss":
                    scalars.append(per_output[name[len("loss:") :]].detach().float())
            for values in means.values():
                scalars.append(values.sum() if distributed else values.mean())
            parts = [torch.stack(scalars).reshape(-1)]
            parts += [c.reshape(-1).float() for c in counts.values()]
            if distributed:
                parts.append(self.agreed.flags(self.device))
            flat = torch.cat(parts)
            if distributed:
                self.processes.all_reduce(flat, what)
            host = flat.cpu().numpy()
        values, i = {}, 0
        for name in names:
            values[name], i = float(host[i]), i + 1
        for name in means:
            value = float(host[i])
            values[name], i = (value / rows if distributed else value), i + 1
        for name, count in counts.items():
            values[name] = host[i : i + count.numel()].reshape(count.shape).copy()
            i += count.numel()
        if distributed:
            self.agreed.update(host[i:])
        return values

    # ------------------------------------------------------------ the state

    def _host(self, names) -> dict:
        state = self.state()
        return {n: state[n] for n in names}

    def state(self) -> dict:
        """A host copy of the whole state (module docstring)."""
        out = {n: np.asarray(a, np.float32) for n, a in self.model.keras_weights().items()}
        for name, tensor in self.optimizer.state().items():
            out[name] = tensor.detach().float().cpu().numpy().copy()
        if self.scale is not None:
            out[LOSS_SCALE] = self.scale.cpu().numpy().copy()
        return out

    def load(self, arrays: dict) -> None:
        """Overwrites the named parts of the state."""
        torch = self.torch
        weights = self.model.keras_weights()
        given = {n: a for n, a in arrays.items() if n in weights}
        if given:
            weights.update(given)
            self.model.load_keras_weights(weights)
        self.optimizer.load(arrays)
        if LOSS_SCALE in arrays and self.scale is not None:
            self.scale.copy_(torch.as_tensor(arrays[LOSS_SCALE], device=self.device))

    def weights(self) -> dict:
        return self.model.keras_weights()

    def keras_weights(self) -> dict:
        """The weights in Keras's layout, as the Keras files take them (keras_export):
        the module holds that layout already."""
        return self.model.keras_weights()

    def moving_averages(self) -> dict:
        """{weight: its moving average} (use_ema), in Keras's layout."""
        averages = self.optimizer.moving_averages()
        places = inspect.getmodule(type(self.model)).keras_weight_places
        layouts = {key: layout for key, _, _, layout in places()}
        to_keras = inspect.getmodule(type(self.model)).torch_to_keras
        return {
            key: to_keras(value.detach(), layouts[key]).cpu().numpy().copy()
            for key, value in averages.items()
        }

    def export(self, path: Path, weights: dict) -> None:
        """The trained model with `weights`, written atomically: the inference `.onnx`,
        or the module's state_dict for a `.pt` path (torch_files)."""
        if Path(path).suffix == ".pt":
            write_state_dict(path, self.model, weights, self.torch)
        else:
            self.exported.onnx(path, weights)

    def end_files(self, run) -> None:
        """When training has ended: the module's state_dict beside the trained .onnx
        (an end hook of the run; the Keras files are the run's own end hook)."""
        if run.trained.suffix != ".pt":
            path = run.out / f"{run.stem}.trained.pt"
            write_state_dict(path, self.model, self.weights(), self.torch)

    def fingerprint(self) -> str:
        """The module's source and the train block's settings."""
        source = inspect.getsourcefile(type(self.model))
        digest = hashlib.sha256(Path(source).read_bytes() if source else b"")
        settings = {k: self.spec[k] for k in ("loss", "optimizer", "regularizers")}
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "device": str(self.device),
            "processes": self.processes.world,
            "precision": self.precision,
            "torch": self.torch.__version__,
        }


def _trained_outputs(model, trained: list[str]):
    """The model as DDP must see it: returning only the outputs the loss uses (and
    their masks), so that the layers of the others are unused parameters, not
    gradients DDP would wait for."""
    import torch

    names = list(model.output_names)
    keep = [names.index(o) for o in trained]

    class TrainedOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            outputs, masks = self.model(*inputs, return_masks=True)
            if len(names) == 1:
                outputs, masks = (outputs,), (masks,)
            return tuple(outputs[i] for i in keep), tuple(masks[i] for i in keep)

    return TrainedOutputs()


def _step_seed(seed: int, step: int, rank: int) -> int:
    """The generator's seed for a step: a function of (seed, step, rank) only."""
    digest = hashlib.sha256(f"{seed}:{step}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
