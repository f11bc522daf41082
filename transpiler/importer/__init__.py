"""Keras models -> .kdl: `ktrans import MODEL.keras|MODEL.h5|CONFIG.json -o FILE.kdl`.

The stages, one module each, without Keras (zipfile, h5py and json only):

    sources.py      the file: config, compile config, where the weights are (bounded reads)
    h5safe.py       careful HDF5 access (hard links only, no virtual or external data)
    kgraph.py       config -> layers, calls and tensors (Keras 2 and 3, nested models)
    layer_calls.py  a layer config -> its .kdl call, checked by the catalogue's own bind
    values.py       config values -> .kdl values and text
    ops.py          keras.ops nodes -> .kdl expressions
    plan.py         which calls chain into pipelines, in which order
    naming.py       variables, block names, the layer names the file must spell out
    writer.py       the .kdl text (blocks for nested models)
    compile.py      the compile config -> a train block
    weights.py      the weights as `<layer>/<weight>` arrays (what build --weights reads)

The written file is loaded and checked before it is returned: a layer ktrans names
differently than the replay of its naming predicted gets its name written, and any
error of the check is reported against the Keras layer whose line it concerns.

To support one more Keras layer, add it to the catalogue (transpiler/layers): the
importer maps config keys to catalogue arguments by name. A Keras setting the catalogue
does not have but that is harmless at one value goes into layer_calls.KERAS_ONLY.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transpiler.errors import KdlErrors
from transpiler.importer.errors import ImportFailure, fail, report
from transpiler.importer.sources import KerasFile, read_keras_file


@dataclass
class Imported:
    text: str
    source: KerasFile
    graph: object  # the checked transpiler.graph.model.Graph of the written file
    model_name: str
    renamed: dict  # .kdl layer name -> Keras layer name, where they differ

    def weights(self) -> dict:
        """The Keras file's weights as `<layer>/<weight>` arrays for `graph`."""
        from transpiler.importer.weights import read_weights

        return read_weights(self.source, self.graph, self.renamed)


def header(kfile: KerasFile, layers: int, params: int) -> list[str]:
    version = f" (Keras {kfile.keras_version})" if kfile.keras_version else ""
    return [
        f"# Imported by `ktrans import` from {_printable(kfile.path.name)}{version}:",
        f"# {layers} layers, {params:,} parameters. Layer names are Keras's; arguments at",
        "# their Keras defaults are left out.",
    ]


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:80]


def import_keras(path: str | Path) -> Imported:
    """Reads a Keras file and returns the .kdl text of its model, checked."""
    from transpiler.graph import load
    from transpiler.importer.kgraph import read_model
    from transpiler.importer.naming import model_identifier
    from transpiler.importer.writer import model_text

    kfile = read_keras_file(path)
    where = kfile.path.name
    try:
        model = read_model(kfile.config)
    except ImportFailure as e:
        report(where, e)
    force: set[str] = set()
    name = model_identifier(model.name)
    for _ in range(4):
        try:
            text, writer, line_layers = model_text(model, [], force)
            train = _train_lines(kfile, model, name)
        except ImportFailure as e:
            report(where, e)
        if train:
            text += "\n" + "\n".join(train) + "\n"
        try:
            _, graphs = load(f"{Path(where).stem}.kdl", text=text)
        except KdlErrors as e:
            _report_check(where, e, line_layers)
        graph = graphs[name]
        missing = {n for n in writer.kdl_names.values()} - {la.name for la in graph.layers}
        if not missing:
            break
        force |= missing
    else:
        fail(where, f"could not name the layers {sorted(missing)[:3]} as Keras does")
    layers = sum(1 for la in graph.layers if la.family != "expression")
    top = header(kfile, layers, graph.param_count)
    return Imported("\n".join(top) + "\n" + text, kfile, graph, name, dict(writer.renamed))


def _train_lines(kfile: KerasFile, model, name: str) -> list[str]:
    if not kfile.compile_config:
        return []
    from transpiler.importer.compile import train_block
    from transpiler.importer.naming import identifier

    outputs = [identifier(n) for n, _ in model.outputs]
    try:
        return train_block(kfile.compile_config, name, outputs, lambda n: True)
    except ImportFailure as e:
        e.message = f"compile config: {e.message}"
        raise


def _report_check(where: str, errors: KdlErrors, line_layers: list) -> None:
    """A check of the written file failed: name the Keras layer of the line."""
    first = errors.errors[0]
    line = first.span.line if first.span is not None else None
    layer = line_layers[line - 1] if line and 0 < line <= len(line_layers) else None
    if layer is not None:
        failure = ImportFailure(first.message, first.hint).at_layer(layer.name, layer.class_name)
        report(where, failure)
    fail(where, f"the imported model does not check: {first.message}", first.hint)
