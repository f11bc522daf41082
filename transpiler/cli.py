"""The `ktrans` command: parses arguments, calls the library, renders errors.

Exit codes: 0 success, 1 errors in the input (a .kdl file, an ONNX file, data), 2 usage
errors (unknown command or option, missing argument).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from transpiler import __version__
from transpiler.errors import KdlError, KdlErrors, printable

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message, drop the traceback."""


def _load(path: str, models: list[str] | None = None):
    from transpiler.graph import load

    return load(path, models=models)


def cmd_check(args) -> int:
    failed = False
    for path in args.files:
        try:
            _, graphs = _load(path)
        except KdlErrors as e:
            _print_errors(e)
            failed = True
            continue
        for name, g in graphs.items():
            outs = ", ".join(g.outputs)
            print(
                f"{printable(path)}: model {name}: ok, {len(g.inputs)} input(s), outputs {outs}, "
                f"{len(g.layers)} layers, {g.param_count:,} params"
            )
    return EXIT_INPUT if failed else EXIT_OK


def cmd_summary(args) -> int:
    from transpiler.summary import render_summary

    if args.file.lower().endswith(".onnx"):
        # an ONNX file has no Keras layers to tabulate: one line saying what does read it
        out = Path(args.file).with_suffix(".svg").name
        print(
            f"error: {args.file} is an ONNX file and `ktrans summary` reads .kdl models; "
            f"draw it with `ktrans viz {args.file} -o {out}`",
            file=sys.stderr,
        )
        return EXIT_INPUT
    try:
        program, graphs = _load(args.file, [args.model] if args.model else None)
    except KdlErrors as e:
        _print_errors(e)
        return EXIT_INPUT
    print("\n\n".join(render_summary(g) for g in graphs.values()))
    return EXIT_OK


def _print_errors(e: KdlErrors) -> None:
    print(e.render(), file=sys.stderr)


class _Escaping:
    """A text stream that escapes control characters (but newlines and tabs) on their way
    to the terminal: whatever a command prints, a name or path from the input cannot
    send escape sequences. Messages escape newlines in names and paths themselves."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(printable(text, "\n\t"))

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def escaped_output():
    """sys.stdout and sys.stderr escaped (see `_Escaping`) while a command runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Escaping(sys.stdout), _Escaping(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ktrans",
        description="Compile .kdl model files: check them, summarise them, build ONNX, "
        "draw diagrams, generate training scripts.",
        epilog="Exit codes: 0 success, 1 errors in the input files, 2 usage errors.",
    )
    parser.add_argument("--version", action="version", version=f"ktrans {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="check .kdl files: names, shapes, arguments")
    p.add_argument("files", nargs="+", metavar="FILE", help=".kdl files to check")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("summary", help="print a Keras-style summary table of a model")
    p.add_argument("file", metavar="FILE", help="a .kdl file")
    p.add_argument("--model", metavar="NAME", help="only this model (default: every model)")
    p.set_defaults(run=cmd_summary)

    _register_optional_commands(sub)
    return parser


def _register_optional_commands(sub) -> None:
    """Commands that live in their own modules register themselves here."""
    import importlib

    for module in (
        "transpiler.cli_build",
        "transpiler.cli_codegen",
        "transpiler.cli_evaluate",
        "transpiler.cli_import",
        "transpiler.cli_predict",
        "transpiler.cli_report",
        "transpiler.cli_train",
        "transpiler.cli_viz",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.register(sub)


def run() -> None:
    """The `ktrans` command (and `python -m transpiler`): main() in a process that ends
    with it. The cyclic garbage collector stays off (a build allocates a great many
    objects and frees little before the process exits), and what is left at exit is
    frozen so that the interpreter's final collection does not walk it: together about
    0.15 s of a ResNet-50 build."""
    gc.disable()
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with escaped_output():
            return args.run(args)
    except KdlErrors as e:
        _print_errors(e)
        return EXIT_INPUT
    except KdlError as e:
        _print_errors(KdlErrors([e]))
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except MemoryError:  # the input asked for more than the budgets caught
        print(
            "error: ktrans ran out of memory: the input needs more than this process may use",
            file=sys.stderr,
        )
        return EXIT_INPUT
    except Exception as e:  # a bug in ktrans, not in the input
        if os.environ.get("KTRANS_DEBUG"):
            raise
        print(
            f"ktrans: internal error: {type(e).__name__}: {printable(str(e))}\n"
            "  this is a bug in ktrans; rerun with KTRANS_DEBUG=1 for the traceback",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    run()
