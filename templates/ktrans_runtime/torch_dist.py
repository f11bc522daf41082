"""Several processes under torchrun: DistributedDataParallel's setting, the share of a
batch each process trains on, and what all processes must agree on.

    torchrun --nproc_per_node 2 train_MnistMLP.py --data mnist.npz

torchrun starts one process per rank and tells each its RANK, WORLD_SIZE and
LOCAL_RANK in the environment (with MASTER_ADDR/MASTER_PORT for the rendezvous);
`Processes.from_environment` reads them, or makes the one-process setting when they are
absent. The processes talk over gloo on the CPU and nccl on CUDA (one GPU per local
rank), with a timeout on every collective (--collective-timeout), so that a process
whose peer hangs ends instead of waiting forever.

**The data.** Every process walks through the same epoch order (data.epoch_order, a
function of the seed and the epoch); of each batch, process r takes its share
`share(rows)`: the r-th of `world` contiguous, nearly equal parts. The losses of the
shares add up to the loss of the whole batch (torch_losses.reduce divides by the whole
batch's counts, `DistributedCounts`), and DDP's averaged gradients, times the number of
processes, are the gradients of the whole batch's loss: the run trains as one process
on the whole batch would, up to rounding (BatchNormalization normalizes each share by
its own statistics, as DDP does without SyncBatchNorm).

**Agreement.** The logged values (losses, metric statistics) are added up over the
processes in one all_reduce per step, which also carries whether any process was asked
to stop (Ctrl-C, SIGTERM): every process then stops after the same step and saves the
same checkpoint. Only rank 0 writes into --out and prints; the other ranks write into a
private temporary folder (thrown away when they end) and print only errors, marked
with their rank.

**Failure.** A process that dies makes the collectives of the others fail (gloo: at
once; nccl: at the timeout); they end with one line that says so, and the launcher
names the process that failed and ends the job (torchrun: its "Root Cause" report;
`ktrans train --nproc N`: one line). Checkpoints are written atomically, so the last
one is intact: `--resume` continues from it, on any number of processes.

torch is imported when the processes are set up, not with this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np

from .errors import TrainingError
from .torch_losses import Counts

TEST_KILL = "KTRANS_TEST_KILL_AFTER_STEPS"

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class Processes:
    """This process's place in the job: `rank` of `world`, its device."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.group = None  # torch.distributed's default group, once joined
        self.scratch: Path | None = None

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Processes:
        given = [name for name in ENVIRONMENT if name in os.environ]
        if not given:
            return cls()
        if len(given) < len(ENVIRONMENT):
            missing = sorted(set(ENVIRONMENT) - set(given))
            raise TrainingError(
                f"the environment sets {', '.join(given)} but not "
                f"{', '.join(missing)}: start several processes with torchrun "
                "--nproc_per_node N"
            )
        try:
            rank, world, local = (int(os.environ[name]) for name in ENVIRONMENT)
        except ValueError:
            raise TrainingError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
        if not 0 <= rank < world:
            raise TrainingError(f"RANK {rank} is not below WORLD_SIZE {world}")
        return cls(rank, world, local)

    def join(self, device: str, timeout: float) -> None:
        """Joins the other processes (gloo on the CPU, nccl on CUDA)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl" and not dist.is_nccl_available():
            raise TrainingError("--device cuda with several processes needs NCCL")
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
        except Exception as e:  # torch raises several types here
            raise TrainingError(
                f"process {self.rank} of {self.world} could not join the others "
                f"({backend}): {_first_line(e)}"
            ) from None
        self.group = dist.group.WORLD

    def leave(self) -> None:
        if self.group is not None:
            import torch.distributed as dist

            # leaving after a peer died: nothing left to do if this fails
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
            self.group = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    # ------------------------------------------------------------ the data

    def share(self, rows):
        """This process's part of a batch's rows (a slice or an array of row numbers):
        the rank-th of `world` contiguous parts, the first ones a row longer."""
        if not self.distributed:
            return rows
        if isinstance(rows, slice):
            rows = np.arange(rows.start, rows.stop)
        return np.array_split(np.asarray(rows), self.world)[self.rank]

    def shared(self, data):
        """`data` as this process reads it: under torchrun, its share of each batch."""
        return SharedData(data, self) if self.distributed else data

    def share_batch(self, batch: dict) -> dict:
        """This process's part of a batch already taken (evaluation)."""
        if not self.distributed:
            return batch
        size = len(next(iter(batch.values())))
        part = np.array_split(np.arange(size), self.world)[self.rank]
        return {name: array[part] for name, array in batch.items()}

    # ------------------------------------------------------------ agreement

    @contextlib.contextmanager
    def talking(self, what: str):
        """Around code that talks to the other processes (collectives, DDP's forward
        and backward): their failure, when a process died or hung, is one line."""
        try:
            yield
        except Exception as e:  # RuntimeError, DistBackendError, DistNetworkError...
            if not self.distributed or not _lost_contact(e):
                raise
            raise TrainingError(
                f"process {self.rank} of {self.world}: lost the other processes "
                f"during {what} ({_first_line(e)}); the launcher names the process "
                "that failed. The last checkpoint is intact: continue with --resume"
            ) from None

    def all_reduce(self, tensor, what: str):
        """Adds `tensor` up over the processes, in place."""
        if not self.distributed:
            return tensor
        import torch.distributed as dist

        with self.talking(what):
            dist.all_reduce(tensor)
        return tensor

    # ------------------------------------------------------------ files and output

    def setup(self, args) -> None:
        """Before the run: ranks other than 0 print only errors and write into a
        folder of their own (`args.out` changes for them)."""
        self.quiet(args)
        args.out = self.output_folder(args.out, args.resume)

    def output_folder(self, out: Path, resume: bool) -> Path:
        """Where this process writes: --out for rank 0; a private temporary folder for
        the others, holding a copy of the checkpoint they resume from."""
        if self.writes:
            return out
        self.scratch = Path(tempfile.mkdtemp(prefix=f"ktrans-rank{self.rank}-"))
        checkpoint = Path(out) / "checkpoint.npz"
        if resume and checkpoint.is_file():
            shutil.copyfile(checkpoint, self.scratch / "checkpoint.npz")
        return self.scratch

    def quiet(self, args) -> None:
        """Ranks other than 0 print no progress and no messages, only errors (marked
        with their rank) and tracebacks, which would be bugs."""
        if self.writes:
            return
        from . import console

        args.verbose = 0
        mark = f"[rank {self.rank}] "
        error = console.error
        console.info = console.note = console.result = _silent
        console.error = lambda message: error(mark + message)


def _silent(message: str) -> None:
    return None


class DistributedCounts(Counts):
    """The whole batch's counts over every process's share (torch_losses.reduce)."""

    def __init__(self, processes: Processes, local_rows: int, rows: int) -> None:
        self.processes, self.local_rows, self.rows = processes, local_rows, rows

    def total(self, values) -> float:
        per_row = int(np.prod(values.shape[1:])) if values.dim() > 1 else 1
        return float(per_row * self.rows)

    def valid(self, mask):
        import torch

        count = mask.sum(dtype=torch.float32).reshape(1)
        return self.processes.all_reduce(count, "the loss's mask")[0]

    def share(self, penalty):
        return penalty / self.processes.world


class SharedData:
    """A dataset under torchrun: `take(rows)` reads only this process's share of the
    batch's rows (Processes.share). `shared` tells the loop to step on an empty share
    too: every process takes part in each step's collectives."""

    shared = True

    def __init__(self, data, processes: Processes) -> None:
        self.data, self.processes = data, processes

    @property
    def size(self) -> int:
        return self.data.size

    def take(self, rows) -> dict:
        return self.data.take(self.processes.share(rows))


def _lost_contact(error: Exception) -> bool:
    """Whether an error is torch.distributed's (a peer gone, a timeout), not a bug."""
    import torch.distributed as dist

    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection", "timed out")
    )


def _first_line(error: Exception) -> str:
    """The gist of an error: its first line, without gloo's advice and source path."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    line = line.split(" This is typically")[0]
    return re.sub(r"^\[[^\]]*\.(cc|cpp):\d+\] ", "", line)


class AgreedStop:
    """The interrupt as every process sees it after the last all_reduce: each process
    reports its own signal in its own slot, so that all of them learn the first one.
    Reads as the script's Interrupt otherwise."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.interrupt, self.seen = None, None

    def flags(self, device):
        import torch

        flags = torch.zeros(self.world, device=device)
        signum = getattr(self.interrupt, "signum", None)
        if signum:
            flags[self.rank] = float(signum)
        return flags

    def update(self, flags: np.ndarray) -> None:
        given = [int(f) for f in flags if f > 0]
        if given and self.seen is None:
            self.seen = given[0]

    @property
    def signum(self):
        return self.seen

    @property
    def exit_code(self) -> int:
        return 128 + (self.seen or 2)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["interrupt"], name)


def test_kill(rank: int, steps: int) -> None:
    """Test hook: KTRANS_TEST_KILL_AFTER_STEPS=R:N kills the process of rank R (SIGKILL)
    once it has committed N steps in this run: a process that dies mid-epoch."""
    given = os.environ.get(TEST_KILL)
    if given and given == f"{rank}:{steps}":
        os.kill(os.getpid(), signal.SIGKILL)
