"""`ktrans train FILE --engine torch [--nproc N]`: writes the model's PyTorch bundle (the
one `ktrans codegen --target torch` writes) into --out and runs its script: with this
Python for one process, under torchrun (`python -m torch.distributed.run --standalone
--nproc_per_node N`) for several. PyTorch is an optional extra (`pip install
'ktrans[torch]'`); without it `--engine torch` is a one-line error, exit 1."""

from __future__ import annotations

import importlib.util
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
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, "--nproc_per_node", str(args.nproc), *command[1:]]


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
