"""`ktrans train FILE --engine torch [--nproc N]`: writes the model's PyTorch bundle (the
one `ktrans codegen --target torch` writes) into --out and runs its script: with this
Python for one process, under torchrun for several. PyTorch is an optional extra (`pip
install 'ktrans[torch]'`); without it `--engine torch` is a one-line error, exit 1.

torchrun runs as `python -m transpiler.cli_train_torch --standalone --nproc_per_node N
SCRIPT ARGS` (`launch`): torchrun's own code (torch.distributed.run) in a process of
ours, so that a job whose process died ends with one line naming that process, how it
ended and where the last checkpoint is, instead of torchrun's traceback and failure
report. The processes' own output goes straight to the terminal, as under torchrun."""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path

ENGINES = ("onnxruntime", "torch")


def torch_available() -> bool:
    """Whether PyTorch can be imported (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a module set to None, a broken install
        return False


def engine_problem(args) -> str | None:
    """What is wrong with the engine's flags, or PyTorch's absence, in one line; None
    when nothing is."""
    torch = args.engine == "torch"
    if not torch and args.nproc != 1:
        return "--nproc needs --engine torch (DDP under torchrun)"
    if not torch and args.precision != "float32":
        return "--precision needs --engine torch"
    if torch and args.nproc < 1:
        return f"--nproc must be at least 1, not {args.nproc}"
    if torch and not torch_available():
        return "--engine torch needs PyTorch, which is not installed: pip install 'ktrans[torch]'"
    return None


def write_bundle(graph, config, out: Path, seed: int, inference, program, source) -> Path:
    """The PyTorch bundle of the model to train; returns its script."""
    from transpiler.emit.code.torch_bundle import write_torch_bundle
    from transpiler.errors import printable

    paths = write_torch_bundle(graph, config, out, seed, program, source, inference)
    names = ", ".join(p.name for p in paths)
    print(f"wrote {printable(str(out))}/ ({names})", file=sys.stderr)
    sys.stderr.flush()
    return paths[0]


def torch_command(command: list[str], args) -> list[str]:
    """The onnxruntime script's command line, for the PyTorch script: its engine's
    flags, and torchrun in front for several processes."""
    command = [c for c in command if c != "--no-io-binding"]
    if args.precision != "float32":
        command += ["--precision", args.precision]
    if args.nproc == 1:
        return command
    torchrun = [sys.executable, "-m", "transpiler.cli_train_torch", "--standalone"]
    return [*torchrun, "--nproc_per_node", str(args.nproc), *command[1:]]


def launch(argv: list[str]) -> int:
    """torchrun with `argv` (its flags, the script, the script's flags), in this
    process; returns the exit code. A process that fails ends the job with torchrun
    stopping the others, then one line from here (`failure_line`); a signal to
    torchrun reaches the processes (they save a checkpoint) and ends it with 128 + the
    signal, quietly."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # its "failed (exitcode ...)" and "closing signal" lines: the line below says it
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.CRITICAL)
    args = parse_args(argv)
    try:
        run(args)
    except ChildFailedError as e:
        print(failure_line(e.failures, args), file=sys.stderr)
        return 1
    except SignalException as e:
        return 128 + int(e.sigval)
    except Exception as e:  # a rendezvous that failed, a bad flag: torchrun's message
        print(f"error: torchrun: {e}", file=sys.stderr)
        return 1
    return 0


def failure_line(failures: dict, args) -> str:
    """`error: process 1 of 2 was killed by SIGKILL; ...`: the process(es) whose end
    ended the job. torchrun stops the others with SIGTERM, and they may fail first at
    losing their peer (exit 1): a process killed by another signal is the cause, else
    one that failed on its own."""
    stopped = -int(signal.SIGTERM)  # torchrun's own stop (the script exits 143 on one)
    ended = {rank: f for rank, f in failures.items() if f.exitcode != stopped} or failures
    killed = {rank: f for rank, f in ended.items() if f.exitcode < 0}
    world = getattr(args, "nproc_per_node", "")
    of = f" of {world}" if str(world).isdigit() else ""
    causes = [
        f"process {rank}{of} {_ended(f.exitcode)}" for rank, f in sorted((killed or ended).items())
    ]
    return f"error: {', '.join(causes)}; {_checkpoint_note(args.training_script_args)}"


def _ended(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    return f"was killed by {name}"


def _checkpoint_note(script_args: list[str]) -> str:
    """Where the run continues from: the script's --out holds the last checkpoint,
    written atomically, so intact whatever ended the job."""
    from transpiler.errors import printable

    out = script_args[script_args.index("--out") + 1] if "--out" in script_args[:-1] else None
    checkpoint = Path(out or ".") / "checkpoint.npz"
    if out and checkpoint.is_file():
        shown = printable(str(checkpoint))
        return f"the last checkpoint ({shown}) is intact: continue with --resume"
    return "no checkpoint had been saved yet: run it again"


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))


def add_flags(p) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="onnxruntime",
        help="onnxruntime (ktrans's gradients, the default) or torch (a PyTorch module "
        "and loop; needs pip install 'ktrans[torch]')",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="--engine torch: train data parallel in N processes (torchrun, DDP)",
    )
    p.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="--engine torch with --device cuda: autocast to bfloat16 or float16",
    )
