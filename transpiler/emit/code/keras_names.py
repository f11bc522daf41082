"""Safe names and literals for the generated Keras code: identifier checks and
mangling, string and number literals, comment text.

No name or string from a .kdl file becomes code unchecked: every identifier is checked
or replaced, every literal is written with `repr()`, comments carry checked characters.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re

from transpiler.layers.base import snake_case

NAME_LIMIT = 24  # variables stay short, so operator expressions fit on one line

# names the generated module binds or uses itself; tensors never take them
RESERVED = frozenset(
    {"keras", "layers", "ops", "np", "model", "build_model", "compile_model", "FIT_ARGS"}
)
_BUILTINS = frozenset(dir(builtins))


class CodegenError(Exception):
    """A graph construct the Keras generator cannot express."""


def is_safe_identifier(name: str) -> bool:
    """An ASCII Python identifier that is no keyword, soft keyword, builtin or dunder."""
    return (
        isinstance(name, str)
        and name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in _BUILTINS
        and not name.startswith("__")
    )


class Namer:
    """Unique, safe, lower-case variable names from hints (.kdl names, layer names)."""

    def __init__(self) -> None:
        self.used: set[str] = set(RESERVED)
        self.count = 0

    def fresh(self, hint: str) -> str:
        base = snake_case(re.sub(r"[^0-9A-Za-z_]+", "_", str(hint)))
        base = re.sub(r"_+", "_", base).strip("_")[:NAME_LIMIT].rstrip("_")
        if base and (base in RESERVED or not is_safe_identifier(base)):
            base = f"{base}_"  # class -> class_, keras -> keras_, print -> print_
        if not base or not is_safe_identifier(base) or base[0].isdigit():
            self.count += 1
            base = f"t_{self.count}"
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        if not is_safe_identifier(name):  # cannot happen; never emit an unchecked name
            raise CodegenError(f"unsafe identifier {name!r}")
        self.used.add(name)
        return name


def pystr(s: str) -> str:
    """A string literal, as repr() writes it but with the double quotes ruff prefers."""
    text = repr(str(s))
    if text.startswith("'") and '"' not in s:
        text = '"' + text[1:-1].replace("\\'", "'") + '"'
    if ast.literal_eval(text) != s:  # the literal must mean exactly the string
        raise CodegenError(f"cannot write {s!r} as a literal")
    return text


def lit(value) -> str:
    """A Python literal for a config value (numbers, strings, booleans, None, tuples)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CodegenError(f"cannot write the number {value!r}")
        return repr(float(value))
    if isinstance(value, str):
        return pystr(value)
    if isinstance(value, tuple):
        items = [lit(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(lit(v) for v in value)}]"
    name = getattr(value, "name", None)
    if isinstance(name, str) and type(value).__name__ == "Symbol":
        return pystr(name)
    raise CodegenError(f"cannot write a {type(value).__name__} value as Keras code")


def comment_text(text: str) -> str:
    """Comment text made of checked characters only."""
    return re.sub(r"[^0-9A-Za-z_.\-,:()>' ]", "_", text)


def checked(name: str) -> str:
    """A name from ktrans's own catalogues (a Keras class): still checked."""
    if not (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)):
        raise CodegenError(f"unsafe Keras name {name!r}")
    return name


def is_safe_name_text(text: str) -> bool:
    """Text that may appear in a docstring or comment as it is."""
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-]{1,60}", text or ""))
