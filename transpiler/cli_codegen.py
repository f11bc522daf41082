"""`ktrans codegen FILE --target keras|torch|train`: a .kdl model as Python code.

Registered by `transpiler.cli._register_optional_commands`. The Keras target writes a
module whose `build_model()` builds the model with Keras 3's functional API (see
transpiler/emit/code/keras.py); the torch target a folder with a torch.nn.Module and its
initial weights (transpiler/emit/torch/); the train target a training bundle. Files are
written atomically.
"""

from __future__ import annotations

from pathlib import Path

from transpiler.errors import KdlError, KdlErrors, printable

EXIT_OK = 0
TARGETS = ("keras", "torch", "train")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "codegen",
        help="generate Python code: the model in Keras 3 or PyTorch, or a training bundle",
        description="--target keras: a Python module that builds the .kdl model with Keras "
        "3's functional API: build_model(), compile_model() from the default train block, "
        "and a __main__ that prints the summary. --target torch: a folder with <Model>.py, "
        "a torch.nn.Module computing what Keras computes (torch is needed to run it, not "
        "to generate it), and <Model>.init.npz, its initial weights as `ktrans build "
        "--seed` draws them; for a model with a train block also train_<Model>.py, its "
        "training script (plain PyTorch; torchrun for several processes). --target "
        "train: a folder with a standalone training script (numpy + onnxruntime) and its "
        "ONNX models.",
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
        "torch: the folder for the module (default: FILE's name with _torch/); "
        "train: the folder for the training bundle",
    )
    p.add_argument("--model", metavar="NAME", help="which model, when the file has several")
    p.add_argument("--train", metavar="NAME", help="--target train|torch: which train block")
    p.add_argument("--seed", type=int, default=0, help="--target torch|train: initial weights seed")
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
        from transpiler.cli_train import dynamic_inputs, fix_axes_to_data
        from transpiler.emit.code.train_script import codegen_train

        trained = fix_axes_to_data(graph, args)
        try:
            print(codegen_train(trained, args.output, args.train, args.seed, inference=graph))
        except KdlErrors:
            dynamic = dynamic_inputs(graph)
            if args.data or not dynamic:
                raise
            # the failure is the dynamic axes' (a Conv or recurrent gradient needs known
            # lengths): what to do about them is the whole message
            shown = ", ".join(f"{v.name}: {_declared(v.type)}" for v in dynamic)
            hint = KdlError(
                _input_span(program, graph.name, dynamic[0].name),
                f"{graph.name} has inputs with dynamic axes ({shown}); training fixes them "
                "to the lengths of the training data: pass --data D.npz",
                "or declare the time axis with a number in the input's type (the model "
                "then trains on that length only)",
            )
            raise KdlErrors([hint]) from None
        return EXIT_OK
    if args.target == "torch":  # -o is a directory here too
        return codegen_torch(program, graph, args)
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


def _input_span(program, model: str, name: str):
    """Where the model declares the input `name` (None if not found)."""
    from transpiler.graph.blocks import flatten
    from transpiler.parser import ast

    for stmt in flatten(program.models[model].body):
        if isinstance(stmt, ast.InputStmt) and stmt.name == name:
            return stmt.span
    return None


def _declared(t) -> str:
    """A type as a .kdl file declares it: `float32[?, 4]` (the batch axis left out)."""
    dims = ", ".join(str(d) if isinstance(d, int) else "?" for d in t.shape[1:])
    return f"{t.dtype}[{dims}]"


def codegen_torch(program, graph, args) -> int:
    """Writes DIR/<Model>.py and DIR/<Model>.init.npz (Keras layout, the weights `ktrans
    build --seed N` starts from); for a model with a train block, the whole PyTorch
    training bundle (transpiler.emit.code.torch_bundle: the script, the runtime...)."""
    import io

    import numpy as np

    from transpiler.emit.onnx.model import initial_weights
    from transpiler.emit.onnx.save import atomic_write_bytes
    from transpiler.emit.torch import torch_module

    out = Path(args.output or f"{Path(args.file).stem}_torch")
    if out.exists() and not out.is_dir():
        raise KdlErrors(
            [KdlError(None, f"cannot write into '{out}': it is a file", "-o names a folder")]
        )
    if graph.trains:  # PyTorch runs any length of a `?` axis: no fixing to the data
        from transpiler.emit.code.torch_bundle import codegen_torch_bundle

        print(codegen_torch_bundle(graph, out, args.train, args.seed, program, args.file))
        return EXIT_OK
    generated = torch_module(graph, program, source=args.file)
    arrays = {
        f"{layer}/{name}": np.asarray(value, np.float32)
        for layer, weights in initial_weights(graph, args.seed).items()
        for name, value in weights.items()
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    out.mkdir(parents=True, exist_ok=True)
    module = out / f"{generated.class_name}.py"
    atomic_write_bytes(module, generated.code.encode("utf-8"))
    atomic_write_bytes(out / f"{generated.class_name}.init.npz", buffer.getvalue())
    layers = sum(1 for la in graph.layers if la.family != "expression")
    print(
        f"wrote {module} ({graph.name}: torch.nn.Module {generated.class_name}, {layers} "
        f"layers, {graph.param_count:,} params) and its initial weights "
        f"{generated.class_name}.init.npz (seed {args.seed})"
    )
    return EXIT_OK
