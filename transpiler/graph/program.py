"""Loads a .kdl file and its imports into one `Program`: every block, const, model and
train block by name, with duplicate and import-cycle checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transpiler.errors import ErrorSink, KdlError, KdlErrors, Span
from transpiler.limits import MAX_IMPORT_DEPTH, MAX_PROGRAM_BYTES
from transpiler.parser import ast, parse_text, read_source


@dataclass
class Program:
    root: str
    sources: dict[str, str] = field(default_factory=dict)  # file -> text, for carets
    modules: dict[str, ast.Module] = field(default_factory=dict)
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    consts: list[ast.ConstDef] = field(default_factory=list)  # in dependency order
    const_names: dict[str, ast.ConstDef] = field(default_factory=dict)  # the same, by name
    models: dict[str, ast.ModelDef] = field(default_factory=dict)  # the root file's
    trains: list[ast.TrainDef] = field(default_factory=list)


def load_program(path: str | Path, text: str | None = None) -> Program:
    """Parses `path` and everything it imports. Raises KdlErrors."""
    root = str(path)
    program = Program(root)
    sink = ErrorSink()
    _load(program, root, text, sink, stack=(), span=None)
    sink.raise_if_any()
    module = program.modules[root]
    for model in module.models:
        if model.name in program.models:
            sink.error(
                model.name_span,
                f"model '{model.name}' is defined twice",
                f"the first is at {program.models[model.name].name_span}",
            )
        else:
            program.models[model.name] = model
    program.trains = list(module.trains)
    if not program.models:
        sink.error(
            Span(root, 1, 1),
            "the file defines no model",
            "add `model Name { input x: float32[...] ... }`",
        )
    sink.raise_if_any()
    return program


def _load(program, file, text, sink, stack, span) -> None:
    if file in stack:
        chain = " -> ".join(Path(f).name for f in (*stack, file))
        sink.error(span, f"import cycle: {chain}", "remove one of the imports")
        return
    if file in program.modules:
        return
    if len(stack) > MAX_IMPORT_DEPTH:
        sink.error(span, f"imports nest more than {MAX_IMPORT_DEPTH} deep")
        return
    try:
        source = text if text is not None else read_source(file, span)
        total = sum(map(len, program.sources.values())) + len(source)
        if total > MAX_PROGRAM_BYTES:
            sink.error(
                span,
                f"the file and its imports hold {total:,} characters; the limit is "
                f"{MAX_PROGRAM_BYTES:,}",
            )
            return
        program.sources[file] = source
        module = parse_text(source, file)
    except KdlErrors as e:
        for err in e.errors:
            sink.add(err)
        return
    program.modules[file] = module
    for imp in module.imports:
        target = str(Path(file).parent / imp.path) if not Path(imp.path).is_absolute() else imp.path
        if not Path(target).exists():
            sink.error(
                imp.span,
                f'cannot import "{imp.path}": no such file',
                f"paths are relative to {Path(file).parent or '.'}/",
            )
            continue
        if not _is_kdl(target):
            sink.error(
                imp.span,
                f'cannot import "{imp.path}": only .kdl files can be imported',
                "an import names another .kdl file of blocks and consts",
            )
            continue
        _load(program, target, None, sink, (*stack, file), imp.span)
    for block in module.blocks:
        _define(program.blocks, block.name, block, block.name_span, "block", sink)
    for const in module.consts:
        existing = program.const_names.get(const.name)
        if existing is not None:
            sink.add(
                KdlError(
                    const.name_span,
                    f"constant '{const.name}' is defined twice",
                    f"the first is at {existing.name_span}",
                )
            )
        else:
            program.consts.append(const)
            program.const_names[const.name] = const


def _is_kdl(path: str) -> bool:
    """A .kdl name, and a .kdl file behind it too when it is a symbolic link (so
    `x.kdl -> /etc/shadow` is not read, and its first line never shown in an error)."""
    return path.endswith(".kdl") and Path(path).resolve().name.endswith(".kdl")


def _define(table, name, node, span, kind, sink) -> None:
    if name in table:
        if table[name] is node:
            return
        sink.error(
            span, f"{kind} '{name}' is defined twice", f"the first is at {table[name].name_span}"
        )
    else:
        table[name] = node
