"""The Keras-exact PyTorch building blocks of templates/torch_layers, read as text.

Each top-level definition (class, function, constant) there can be copied into a
generated module; `helper_sources(names)` returns the requested ones and every one they
use, in the library's order (which defines each name before its users). ktrans never
imports those modules (they import torch); it parses their source.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

#: the library's modules, in dependency order
MODULES = (
    "weights",
    "conv",
    "pooling",
    "normalization",
    "recurrent",
    "attention",
    "merging",
    "reshaping",
    "core",
    "preprocessing",
    "applications",
)

#: module-level imports a definition may use, and the import statement each needs
IMPORTS = {"math": "import math"}


@dataclass(frozen=True)
class Definition:
    name: str
    source: str
    uses: frozenset[str]  # other library names and IMPORTS it refers to
    order: int


def _read(module: str) -> str:
    try:
        from importlib import resources

        return (
            resources.files("transpiler.templates")
            .joinpath("torch_layers", f"{module}.py")
            .read_text("utf-8")
        )
    except (ModuleNotFoundError, FileNotFoundError):
        here = Path(__file__).resolve().parents[3] / "templates" / "torch_layers"
        return (here / f"{module}.py").read_text("utf-8")


def _leading_comments(lines: list[str], lineno: int) -> list[str]:
    """The comment lines right above line `lineno` (1-based)."""
    out = []
    i = lineno - 2
    while i >= 0 and lines[i].startswith("#"):
        out.insert(0, lines[i])
        i -= 1
    return out


@functools.cache
def library() -> dict[str, Definition]:
    found: dict[str, tuple[str, set[str]]] = {}
    for module in MODULES:
        text = _read(module)
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                name = getattr(node.targets[0], "id", None)
            else:
                continue
            if name is None or name in found:
                raise ValueError(f"torch_layers/{module}.py: '{name}' is not a unique name")
            source = "\n".join(
                [*_leading_comments(lines, node.lineno), ast.get_source_segment(text, node)]
            )
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            found[name] = (source, used)
    names = set(found) | set(IMPORTS)
    return {
        name: Definition(name, source, frozenset((used & names) - {name}), i)
        for i, (name, (source, used)) in enumerate(found.items())
    }


def closure(names: set[str]) -> list[Definition]:
    """The definitions `names` need, in library order."""
    lib = library()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen or name in IMPORTS:
            continue
        if name not in lib:
            raise KeyError(f"templates/torch_layers defines no '{name}'")
        seen.add(name)
        todo += lib[name].uses
    return sorted((lib[n] for n in seen), key=lambda d: d.order)


def imports_for(definitions: list[Definition]) -> list[str]:
    """The stdlib import statements the definitions need."""
    used = set().union(*(d.uses for d in definitions)) if definitions else set()
    return [IMPORTS[name] for name in sorted(IMPORTS) if name in used]
