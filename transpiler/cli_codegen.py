"""`ktrans codegen FILE --target keras -o model_keras.py`: a .kdl model as Python code.

Registered by `transpiler.cli._register_optional_commands`. The Keras target writes a
module whose `build_model()` builds the model with Keras 3's functional API (see
transpiler/emit/code/keras.py); the file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from transpiler.errors import KdlError, KdlErrors, printable

EXIT_OK = 0
TARGETS = ("keras", "train")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "codegen",
        help="generate Python code: the model in Keras 3, or a standalone training bundle",
        description="--target keras: a Python module that builds the .kdl model with Keras "
        "3's functional API: build_model(), compile_model() from the default train block, "
        "and a __main__ that prints the summary. --target train: a folder with a "
        "standalone training script (numpy + onnxruntime) and its ONNX models.",
    )
    p.add_argument("file", metavar="FILE", help="a .kdl file")
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="keras",
        help="the framework to generate code for (default: keras)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="keras: the module to write (default: FILE's name with _keras.py); "
        "train: the folder for the training bundle",
    )
    p.add_argument("--model", metavar="NAME", help="which model, when the file has several")
    p.add_argument("--train", metavar="NAME", help="--target train: which train block")
    p.add_argument("--seed", type=int, default=0, help="--target train: initial weights seed")
    p.add_argument(
        "--data",
        metavar="D",
        help="--target train: a .npz of training data whose lengths fix the inputs' "
        "dynamic axes (a `?` sequence length; recurrent layers train unrolled)",
    )
    p.set_defaults(run=cmd_codegen)


def cmd_codegen(args) -> int:
    from transpiler.emit.code.keras import generate_keras
    from transpiler.emit.onnx.save import atomic_write_bytes
    from transpiler.graph import load_one

    program, graph = load_one(args.file, args.model)
    if args.target == "train":  # -o is a directory here: the training bundle
        from transpiler.cli_train import fix_axes_to_data
        from transpiler.emit.code.train_script import codegen_train

        trained = fix_axes_to_data(graph, args)
        print(codegen_train(trained, args.output, args.train, args.seed, inference=graph))
        return EXIT_OK
    out = Path(args.output or f"{Path(args.file).stem}_{args.target}.py")
    if out.suffix != ".py":
        raise KdlErrors(
            [KdlError(None, f"cannot write '{out}': the output is a Python module", "name it .py")]
        )
    if out.exists() and out.resolve() == Path(args.file).resolve():
        raise KdlErrors([KdlError(None, f"refusing to overwrite the input file {out}")])
    code = generate_keras(graph, program, source=args.file)
    atomic_write_bytes(out, code.encode("utf-8"))
    layers = sum(1 for la in graph.layers if la.family != "expression")
    print(
        f"wrote {printable(str(out))} ({graph.name}: Keras 3 functional model, {layers} layers, "
        f"{graph.param_count:,} params)"
    )
    return EXIT_OK
