"""`ktrans import MODEL.keras|MODEL.h5|CONFIG.json -o FILE.kdl [--weights-out W.npz]`.

Registered by `transpiler.cli._register_optional_commands`. Reads the Keras file without
Keras (transpiler/importer), writes the checked .kdl text atomically, and with
--weights-out the weights as the `<layer>/<weight>` .npz that `ktrans build --weights`
reads.
"""

from __future__ import annotations

from pathlib import Path

from transpiler.errors import KdlError, KdlErrors

EXIT_OK = 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import",
        help="turn a Keras model (.keras, whole-model .h5, or JSON config) into a .kdl file",
        description="Reads a Keras 3 .keras archive, a whole-model .h5 (Keras 2 / tf.keras) "
        "or the JSON of model.to_json() / get_config(), without Keras, and writes the model "
        "as .kdl: pipelines for chains, named tensors where the graph branches, blocks for "
        "nested models, the compile config as a train block. What .kdl cannot express (a "
        "Lambda, an unknown custom layer) is an error naming the layer.",
    )
    p.add_argument("file", metavar="MODEL", help="a .keras, .h5 or .json Keras model file")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the .kdl file to write (default: MODEL's name with .kdl)",
    )
    p.add_argument(
        "--weights-out",
        metavar="W",
        help="also write the model's weights as an .npz for `ktrans build FILE --weights W`",
    )
    p.set_defaults(run=cmd_import)


def _refuse(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def cmd_import(args) -> int:
    from transpiler.importer import import_keras
    from transpiler.importer.files import atomic_write

    source = Path(args.file)
    out = Path(args.output or source.with_suffix(".kdl").name)
    if out.suffix != ".kdl":
        _refuse(f"cannot write '{out}': the output is a .kdl file", "name it .kdl")
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        _refuse(f"refusing to overwrite the input file {out}")
    weights_out = Path(args.weights_out) if args.weights_out else None
    if weights_out is not None and weights_out.suffix != ".npz":
        _refuse(f"cannot write '{weights_out}': --weights-out writes an .npz", "name it .npz")
    imported = import_keras(source)
    arrays = imported.weights() if weights_out is not None else None
    atomic_write(out, lambda f: f.write(imported.text.encode("utf-8")))
    graph = imported.graph
    layers = sum(1 for la in graph.layers if la.family != "expression")
    print(
        f"wrote {out} (model {imported.model_name}: {layers} layers, {graph.param_count:,} params)"
    )
    if arrays is not None:
        from transpiler.importer.weights import write_npz

        write_npz(arrays, weights_out)
        size = sum(a.nbytes for a in arrays.values())
        print(f"wrote {weights_out} ({len(arrays)} arrays, {size / 1e6:.1f} MB)")
    return EXIT_OK
