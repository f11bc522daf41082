"""`ktrans train FILE --data D`: writes the model's training bundle (the script that
`ktrans codegen --target train` writes; with --engine torch the PyTorch bundle, see
cli_train_torch) into --out and runs that script with this Python, so there is one
training loop. Flags pass through to the script; its exit code is ours
(130 or 143 after Ctrl-C or SIGTERM, with a checkpoint saved: continue with --resume)."""

from __future__ import annotations

import sys
from pathlib import Path

from transpiler.cli_train_torch import add_flags as add_engine_flags
from transpiler.cli_train_torch import engine_problem, torch_command, write_bundle
from transpiler.errors import KdlError, KdlErrors

# ktrans train flag -> the script's flag, for the flags that pass through with a value
PASSED = {
    "seed": "--seed",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "validation_split": "--validation-split",
    "device": "--device",
    "verbose": "--verbose",
}

# the data flags that take one choice
DATA_CHOICES = {
    "color_mode": "--color-mode",
    "label_mode": "--label-mode",
    "interpolation": "--interpolation",
}


def script_command(script: Path, args) -> list[str]:
    """The command line that runs the generated script with this Python."""
    command = [sys.executable, str(script), "--data", str(Path(args.data).resolve())]
    command += ["--out", str(Path(args.out).resolve())]
    for attr, flag in PASSED.items():
        value = getattr(args, attr)
        if value is not None:
            command += [flag, str(value)]
    if args.image_size:
        command += ["--image-size", *(str(n) for n in args.image_size)]
    for attr, flag in DATA_CHOICES.items():
        if getattr(args, attr):
            command += [flag, getattr(args, attr)]
    for attr, flag in (("columns", "--columns"), ("categorical", "--categorical")):
        for value in getattr(args, attr) or []:
            command += [flag, value]
    if args.resume:
        command.append("--resume")
    if args.no_io_binding:
        command.append("--no-io-binding")
    return command


def run_script(command: list[str]) -> int:
    """Runs the script, forwarding SIGINT and SIGTERM to it (it saves a checkpoint and
    exits with 128 + the signal; a Ctrl-C at a terminal reaches it directly too, and a
    second one only repeats that it is stopping)."""
    import signal  # here, not at the top: every ktrans command imports this module
    import subprocess

    process = subprocess.Popen(command)

    def forward(signum, frame):
        if process.poll() is None:
            process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def dynamic_inputs(graph) -> list:
    """The graph's inputs with dynamic axes besides the batch (a `?` sequence length)."""
    return [v for v in graph.inputs if any(not isinstance(d, int) for d in v.type.shape[1:])]


def fix_axes_to_data(graph, args):
    """The graph to train: `graph` itself, or, when inputs have dynamic axes besides the
    batch (a `?` sequence length), the model rebuilt with them set to the lengths of the
    --data arrays (a training step unrolls recurrent layers over known timesteps). Data
    without the arrays of those inputs gets the message the training script gives for
    missing arrays."""
    from transpiler.graph import load_one
    from transpiler.graph.fixed_axes import dynamic_input_shapes, npz_shapes

    dynamic = dynamic_inputs(graph)
    if not dynamic or not args.data:
        return graph
    if Path(args.data).suffix != ".npz":
        return graph  # another kind of data: the script reads it (and says what is wrong)
    headers = npz_shapes(args.data)
    if not headers:
        raise KdlErrors(
            [
                KdlError(
                    None,
                    f"--data: cannot read {args.data} as an .npz archive of arrays; "
                    f"{graph.name} takes the lengths of its inputs' dynamic axes from them",
                )
            ]
        )
    shapes = dynamic_input_shapes(graph, args.data)
    missing = [v for v in dynamic if v.name not in shapes]
    if missing:
        message = _missing_arrays(graph, missing, list(headers), args.data)
        raise KdlErrors([KdlError(None, message)])
    _, fixed = load_one(args.file, graph.name, input_shapes=shapes)
    return fixed


def _missing_arrays(graph, missing, files: list[str], args_data: str) -> str:
    """The training script's own message for arrays it cannot find (one wording)."""
    from transpiler.templates.ktrans_runtime.data import Feed
    from transpiler.templates.ktrans_runtime.npz_source import missing_message

    keras = "x" if len(graph.inputs) == 1 else None  # as dynamic_input_shapes looks

    def feed(v) -> Feed:
        return Feed(name=v.name, array=v.name, dtype=v.type.dtype, shape=(), keras=keras)

    return missing_message(
        "train",
        [feed(v) for v in missing],
        files,
        [feed(v) for v in graph.inputs],
        f"--data {args_data}",
    )


def check_data_path(data: str) -> None:
    """--data must be a file or a folder: a FIFO would block the reader, a device such as
    /dev/zero never ends; each is refused before anything is opened."""
    import os
    import stat

    from transpiler.input_files import kind_of

    try:
        mode = os.stat(data).st_mode
    except OSError:
        raise KdlErrors([KdlError(None, f"--data: no such file or folder {data}")]) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        message = f"--data: {data} is {kind_of(mode)}, neither a file nor a folder"
        raise KdlErrors([KdlError(None, message)])


def cmd_train(args) -> int:
    from transpiler.emit.code.train_script import pick_train, write_training_bundle
    from transpiler.emit.file_names import file_stem
    from transpiler.errors import printable
    from transpiler.graph import load_one

    problem = engine_problem(args)
    if problem:  # one line, exit 1 (not a KdlError's report)
        print(f"error: {problem}", file=sys.stderr)
        return 1
    check_data_path(args.data)
    program, graph = load_one(args.file, args.model)
    out = Path(args.out or Path("runs") / file_stem(graph.name))
    args.out = str(out)
    if args.engine == "torch":  # the PyTorch bundle (any length of a `?` axis trains)
        config = pick_train(graph, args.train)
        script = write_bundle(graph, config, out, args.seed or 0, graph, program, args.file)
        return run_script(torch_command(script_command(script, args), args))
    trained = fix_axes_to_data(graph, args)
    config = pick_train(trained, args.train)
    paths = write_training_bundle(trained, config, out, seed=args.seed or 0, inference=graph)
    script = paths[0]
    print(f"wrote {printable(str(out))}/ ({', '.join(p.name for p in paths)})", file=sys.stderr)
    sys.stderr.flush()
    return run_script(script_command(script, args))


def register(sub) -> None:
    from transpiler.templates.ktrans_runtime.cli import add_data_flags

    p = sub.add_parser(
        "train",
        help="train a model with its train block (onnxruntime, or PyTorch)",
        description="Writes the training bundle of a model (as `ktrans codegen --target "
        "train`, or `--target torch` with --engine torch) into --out and runs its script. "
        "See the script's --help for the data format.",
    )
    p.add_argument("file", metavar="FILE", help="a .kdl file")
    p.add_argument(
        "--data",
        required=True,
        metavar="D",
        help="an .npz of arrays, an image folder, a CSV table or a folder of .npy files",
    )
    p.add_argument("--model", metavar="NAME", help="which model, when the file has several")
    p.add_argument("--train", metavar="NAME", help="which train block (default: the only one)")
    p.add_argument("--epochs", type=int, metavar="N", help="default: the train block's")
    p.add_argument("--batch-size", type=int, metavar="N", help="default: the train block's")
    p.add_argument(
        "--validation-split",
        type=float,
        metavar="F",
        help="hold out the last F of the rows; of an image folder, F of its shuffled files "
        "as Keras's image_dataset_from_directory(validation_split=F, seed=the data "
        "section's seed, else --seed) picks them (default: the train block's)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cpu")
    p.add_argument(
        "--seed",
        type=int,
        help="initial weights, shuffling, and an image folder's split when the data "
        "section has no seed (default 0)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--out", metavar="DIR", help="bundle and results (default runs/<model>)")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], help="0, 1 (bar) or 2 (lines)")
    p.add_argument(
        "--no-io-binding", action="store_true", help="copy the state every step (to compare)"
    )
    add_data_flags(p)  # the script's own data flags, passed through
    add_engine_flags(p)
    p.set_defaults(run=cmd_train)
