"""The command line every bundle script shares, and how a run ends.

`run(main)` wraps a script's `main(interrupt, argv)`: Ctrl-C or SIGTERM while the run
starts ends it with 130 or 143 and one line (never a traceback), a TrainingError is one
`error: ...` line with exit code 1, and the signal handlers are put back afterwards.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import console
from .data_errors import DataError
from .errors import EXIT_ERROR, TrainingError
from .signals import Interrupt, Interrupted

# image_resize.INTERPOLATIONS, spelt here: `ktrans` builds these flags at start-up and
# must not import numpy to do so (tests/runtime/test_data_flags.py keeps them equal)
INTERPOLATION_CHOICES = ("bilinear", "nearest")


def parser(model: str, train_block: str, fit: dict, seed: int, out: Path, engine: str):
    """The flags (an engine may add its own before parsing)."""
    p = argparse.ArgumentParser(
        description=f"Train {console.escape(model)} (train block "
        f"{console.escape(train_block)}) with {engine}.",
        epilog="README.md beside this script describes the data and what a run writes.",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="DATA",
        help="an .npz of arrays, an image folder, a CSV table or a folder of .npy files",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help=f"the last epoch, as Keras counts (default {fit['epochs']})",
    )
    p.add_argument("--batch-size", type=int, help=f"default {fit['batch_size']}")
    p.add_argument(
        "--validation-split",
        type=float,
        metavar="F",
        help="hold out the last F of the rows; of an image folder, F of its shuffled "
        "files, as Keras's image_dataset_from_directory(validation_split=F, seed=the data "
        "section's seed, else --seed) picks them, over the data section's "
        f"validation_split (default {fit['validation_split']})",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the epochs' shuffling, and of an image folder's split when the data "
        f"section has no seed (default {seed})",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument(
        "--out",
        type=Path,
        default=out,
        metavar="DIR",
        help="where results go (default: the script's folder)",
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        help="0 silent, 1 progress bar, 2 one line per epoch",
    )
    if engine == "onnxruntime":  # the onnxruntime engine's own flag
        p.add_argument(
            "--no-io-binding",
            action="store_true",
            help="copy the state in and out every step (to compare; slower)",
        )
    add_data_flags(p)
    return p


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """The data flags: each sets a key of the train block's data { } section (README.md
    and docs/training.md describe them), over the train block's value. (--validation-split
    sets an image folder's validation_split too: the loop applies it, sources.run_split.)"""
    group = p.add_argument_group("data flags (image folders, CSV tables)")
    group.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="resize images to H x W (default: the model input's)",
    )
    group.add_argument("--color-mode", choices=["grayscale", "rgb", "rgba"])
    group.add_argument(
        "--interpolation",
        choices=list(INTERPOLATION_CHOICES),
        help="how images are resized, as Keras's (default bilinear)",
    )
    group.add_argument(
        "--label-mode",
        choices=["int", "categorical", "binary"],
        help="class ids, one-hot rows or 0/1 (default: what the loss takes)",
    )
    group.add_argument(
        "--columns",
        action="append",
        metavar="NAME=COLUMN",
        help="the CSV column of an input or output ('*': every column nothing else "
        "takes); repeat a NAME for several columns",
    )
    group.add_argument(
        "--categorical",
        action="append",
        metavar="COLUMN",
        help="a CSV column of strings, each value its index in the sorted values (repeat)",
    )


def _columns(p: argparse.ArgumentParser, given: list[str] | None) -> dict | None:
    """--columns NAME=COLUMN ... as the data section's `columns`."""
    if not given:
        return None
    columns: dict[str, object] = {}
    for item in given:
        name, sep, column = item.partition("=")
        if not sep or not name or not column:
            p.error(f"--columns {item!r}: expected NAME=COLUMN (an input or output, a column)")
        if name not in columns:
            columns[name] = column
        elif columns[name] == "*" or column == "*":
            p.error(f"--columns: '{name}' takes '*' (every other column) or named columns")
        else:
            before = columns[name]
            columns[name] = [*(before if isinstance(before, list) else [before]), column]
    return columns


def data_flags(args: argparse.Namespace) -> dict:
    """{data section key: value} of the data flags given (None where not given)."""
    size = getattr(args, "image_size", None)
    return {
        "image_size": list(size) if size else None,
        "color_mode": getattr(args, "color_mode", None),
        "interpolation": getattr(args, "interpolation", None),
        "label_mode": getattr(args, "label_mode", None),
        "columns": getattr(args, "columns", None),
        "categorical": getattr(args, "categorical", None),
    }


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    for flag, value, low in (
        ("--epochs", args.epochs, 1),
        ("--batch-size", args.batch_size, 1),
        ("--seed", args.seed, 0),
    ):
        if value is not None and value < low:
            p.error(f"{flag} must be at least {low}")
    split = args.validation_split
    if split is not None and not 0.0 <= split < 1.0:
        p.error("--validation-split must be in [0, 1)")
    if args.image_size is not None and min(args.image_size) < 1:
        p.error("--image-size: H and W must be at least 1")
    args.columns = _columns(p, args.columns)
    return args


def parse_args(argv, model, train_block, fit, seed, out, engine="onnxruntime"):
    p = parser(model, train_block, fit, seed, out, engine)
    return check_args(p, p.parse_args(argv))


def run(main: Callable, argv=None) -> int:
    """`main(interrupt, argv)`'s exit code, handled as the module docstring says."""
    interrupt = Interrupt().install()
    try:
        return main(interrupt, argv)
    except (TrainingError, DataError) as e:
        console.error(str(e))
        return EXIT_ERROR
    except (Interrupted, KeyboardInterrupt) as e:
        console.info("interrupted while starting: nothing was saved")
        return e.exit_code if isinstance(e, Interrupted) else 130
    finally:
        interrupt.restore()
