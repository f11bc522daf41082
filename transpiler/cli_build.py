"""`ktrans build` (a .kdl model to ONNX) and `ktrans run` (an ONNX or .kdl model on
onnxruntime)."""

from __future__ import annotations

from pathlib import Path

from transpiler.errors import KdlError, KdlErrors, printable


def compile_model(
    path: str, model: str | None, seed: int, weights: str | None, opset: int, pending=False
):
    """Loads, checks and lowers one model; returns (Graph, ModelProto without initializers,
    initializers as arrays; with `pending`, some may still be being drawn)."""
    from transpiler.graph import load_one

    _, graph = load_one(path, model)
    if weights:
        from transpiler.emit.onnx.weights import load_weights

        keras_weights = load_weights(weights, graph)
    else:  # the draws start now, on worker threads, while onnx is being imported
        from transpiler.emit.onnx.initial_values import LazyWeights

        keras_weights = LazyWeights(graph, seed, prefetch=True)
    from transpiler.emit.onnx import build_model_parts

    proto, initializers = build_model_parts(
        graph, seed=seed, weights=keras_weights, source=path, opset=opset, pending=pending
    )
    return graph, proto, initializers


def cmd_build(args) -> int:
    from transpiler.emit.onnx import save_model_parts

    graph, proto, initializers = compile_model(
        args.file, args.model, args.seed, args.weights, args.opset, pending=True
    )
    out = Path(args.output or Path(args.file).with_suffix(".onnx").name)
    save_model_parts(proto, initializers, out)
    size = out.stat().st_size
    print(
        f"wrote {printable(str(out))} ({graph.name}: {len(proto.graph.node)} ONNX nodes, "
        f"{graph.param_count:,} params, {size / 1e6:.1f} MB, opset {args.opset})"
    )
    return 0


def _input_files(items: list[str]) -> dict[str, str]:
    """--input NAME=FILE.npy items -> {name: file} (before any work: fail fast)."""
    files = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise KdlErrors([KdlError(None, f"--input {item!r}: expected NAME=FILE.npy")])
        if not file.endswith(".npy"):
            raise KdlErrors([KdlError(None, f"--input {name}: {file} is not an .npy file")])
        files[name] = file
    return files


def _read_inputs(files: dict[str, str], session) -> dict:
    """Each .npy file's header checked against the model's input (name, shape, dtype),
    then its values read."""
    from transpiler.emit.onnx.npz_reading import read_npy
    from transpiler.runtime.session import check_input

    expected = {i.name: i for i in session.get_inputs()}
    feeds = {}
    for name, file in files.items():
        if name not in expected:
            from transpiler.errors import suggest

            hint = suggest(name, expected) or f"its inputs: {', '.join(expected)}"
            raise KdlErrors([KdlError(None, f"the model has no input '{name}'", hint)])
        feeds[name] = read_npy(
            file,
            f"--input {name}",
            lambda shape, dtype, n=name: check_input(expected[n], shape, dtype),
        )
    return feeds


def cmd_run(args) -> int:
    import numpy as np

    from transpiler.runtime.session import (
        RunFailure,
        check_feeds,
        create_session,
        run_failure_error,
        run_session,
    )

    files = _input_files(args.input)
    if args.model_file.endswith(".kdl"):
        from onnx import numpy_helper

        _, model, initializers = compile_model(
            args.model_file, args.model, args.seed, args.weights, 21
        )
        model.graph.initializer.extend(
            numpy_helper.from_array(a, n) for n, a in initializers.items()
        )
    else:
        from transpiler.runtime.session import check_external_data
        from transpiler.viz.onnx_graph import load_onnx

        # a clear error for a missing or broken file, or data kept outside its folder
        check_external_data(load_onnx(args.model_file), args.model_file)
        model = args.model_file
    session = create_session(model, args.device)
    feeds = check_feeds(session, _read_inputs(files, session))
    names = [o.name for o in session.get_outputs()]
    try:
        results = run_session(session, names, feeds)
    except RunFailure as failure:
        if args.model_file.endswith(".kdl"):
            _check_with_lengths(args, feeds)  # the .kdl error at line:col, as training gives
        raise run_failure_error(failure) from None
    if args.output:
        import io

        from transpiler.emit.onnx.save import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, **dict(zip(names, results)))
        atomic_write_bytes(Path(args.output), buffer.getvalue())
        print(f"wrote {printable(args.output)} ({printable(', '.join(names))})")
    device = session.get_providers()[0].replace("ExecutionProvider", "")
    for name, value in zip(names, results):
        stats = ""
        if value.size and np.issubdtype(value.dtype, np.number):
            stats = f" min {value.min():.4g} max {value.max():.4g} mean {value.mean():.4g}"
        print(f"{printable(name)}: {value.dtype}{list(value.shape)}{stats}")
    print(f"ran on {device}")
    return 0


def _check_with_lengths(args, feeds: dict) -> None:
    """Checks the .kdl model again with its dynamic axes fixed to the inputs' lengths, as
    `ktrans train` does with its data: a layer those lengths do not fit (a Conv1D kernel
    longer than the sequence) is then a KdlError at that layer's line and column."""
    from transpiler.graph import load_one

    shapes = {name: tuple(array.shape[1:]) for name, array in feeds.items()}
    load_one(args.model_file, args.model, input_shapes=shapes)


def register(sub) -> None:
    from transpiler.emit.versions import OPSET

    p = sub.add_parser("build", help="compile a .kdl model to an ONNX file")
    p.add_argument("file", metavar="FILE", help="a .kdl file")
    p.add_argument("-o", "--output", metavar="OUT.onnx", help="default: FILE's name, .onnx")
    p.add_argument("--model", metavar="NAME", help="which model, when the file has several")
    p.add_argument("--seed", type=int, default=0, help="seed for initial weights (default 0)")
    p.add_argument("--weights", metavar="W", help="trained Keras weights: .weights.h5 or .npz")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.set_defaults(run=cmd_build)

    p = sub.add_parser("run", help="run a model on onnxruntime")
    p.add_argument("model_file", metavar="MODEL", help="a .onnx file or a .kdl file")
    p.add_argument(
        "--input", action="append", default=[], metavar="NAME=FILE.npy", help="repeatable"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("-o", "--output", metavar="OUT.npz", help="write every output to a .npz")
    p.add_argument("--model", metavar="NAME", help="which model of a .kdl file")
    p.add_argument("--seed", type=int, default=0, help="for a .kdl model: initial weights seed")
    p.add_argument("--weights", metavar="W", help="for a .kdl model: Keras weights")
    p.set_defaults(run=cmd_run)
