"""AST -> checked Graph. `load(path)` returns the program and the graphs of its models.

    from transpiler.graph import load
    program, graphs = load("examples/mnist_mlp.kdl")
    graphs["MnistMLP"].param_count   # 669706

Every error of every model is collected and raised together as one KdlErrors.
"""

from __future__ import annotations

from pathlib import Path


def load(
    path: str | Path,
    text: str | None = None,
    models: list[str] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
):
    """Parses, resolves and checks `path`; returns (Program, {model name: Graph}).

    `models` limits the work to the named models (unknown names are an error).
    `input_shapes` (input name -> the data's shape without the batch axis) fixes the
    inputs' dynamic axes to the data's lengths (see fixed_axes.py)."""
    import sys

    from transpiler.limits import RECURSION_LIMIT

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, RECURSION_LIMIT))  # blocks in blocks in ifs in ifs...
    try:
        return _load(path, text, models, input_shapes)
    finally:
        sys.setrecursionlimit(old)


def _load(path, text, models, input_shapes):
    from transpiler.errors import ErrorSink, KdlErrors, suggest
    from transpiler.graph.builder import GraphBuilder, evaluate_consts
    from transpiler.graph.program import load_program
    from transpiler.graph.train_check import check_trains

    program = load_program(path, text)
    sink = ErrorSink()
    consts = evaluate_consts(program, sink)
    wanted = list(program.models)
    if models:
        for name in models:
            if name not in program.models:
                from transpiler.errors import KdlError

                raise KdlErrors(
                    [
                        KdlError(
                            None,
                            f"{path} has no model '{name}'",
                            suggest(name, program.models)
                            or f"its models: {', '.join(program.models)}",
                        )
                    ]
                )
        wanted = list(models)
    graphs = {}
    for name in wanted:
        builder = GraphBuilder(program, consts, sink, input_shapes)
        graph = builder.build(program.models[name])
        if graph is not None:
            graphs[name] = graph
    check_trains(program, graphs, consts, sink, wanted)
    sink.raise_if_any()
    return program, graphs


def load_one(
    path: str | Path,
    model: str | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
):
    """Loads `path` and returns (Program, Graph) for `model`, or for the file's only model;
    a file with several models and no `model` is an error listing them. `input_shapes` as
    for `load`."""
    from transpiler.errors import KdlError, KdlErrors

    program, graphs = load(path, models=[model] if model else None, input_shapes=input_shapes)
    if model:
        return program, graphs[model]
    if len(graphs) > 1:
        names = list(graphs)
        raise KdlErrors(
            [
                KdlError(
                    None,
                    f"{path} defines {len(names)} models: {', '.join(names)}",
                    f"choose one with --model, e.g. --model {names[0]}",
                )
            ]
        )
    return program, next(iter(graphs.values()))
