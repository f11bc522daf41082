"""Keras config values -> the values a .kdl file writes, and their text.

A Keras config holds JSON: numbers, strings, lists, and serialized objects
(`{"class_name": "GlorotUniform", "config": {...}}`, `{"class_name": "__tuple__", ...}`).
They become the values the .kdl evaluator would produce for the same text (so the
catalogue's converters check them exactly as they check a hand-written file): numbers,
strings, lists, `Symbol`s for bare names (`relu`, `same`) and `Spec`s for calls of named
things (`VarianceScaling(scale=2.0)`, `l2(1e-4)`). `kdl_text` writes such a value back
as .kdl source.
"""

from __future__ import annotations

import math
import re

from transpiler.importer.errors import ImportFailure
from transpiler.layers.activations import ACTIVATIONS, ALIASES
from transpiler.layers.args import Spec, Symbol
from transpiler.layers.initializers import CLASS_NAMES as INIT_CLASSES
from transpiler.layers.initializers import INITIALIZERS

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: words a bare name cannot be in .kdl
KEYWORDS = frozenset(
    ("model", "block", "train", "as", "import", "const", "input", "output", "repeat", "if")
    + ("else", "and", "or", "not", "true", "false", "none", "True", "False", "None")
)
#: initializer config keys newer Keras versions write, meaning nothing when null
_NULL_INIT_KEYS = ("input_axes", "output_axes")
_INIT_KDL_CLASS = {canon: cls for cls, canon in INIT_CLASSES.items() if cls[:1].isupper()}


def is_serialized(value) -> bool:
    return isinstance(value, dict) and "class_name" in value


def plain(value):
    """JSON with Keras's containers undone: `__tuple__` and `__numpy__` become lists."""
    if is_serialized(value) and value["class_name"] in ("__tuple__", "__numpy__"):
        inner = value.get("config", {})
        return plain(inner.get("value") if isinstance(inner, dict) else None)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict) and not is_serialized(value):
        return {k: plain(v) for k, v in value.items()}
    return value


def _class_and_config(value) -> tuple[str, dict]:
    cls = value.get("class_name")
    config = value.get("config") or {}
    if not isinstance(cls, str) or not isinstance(config, dict):
        raise ImportFailure(f"cannot read the serialized object {str(value)[:80]}")
    return cls, config


# ---------------------------------------------------------------- by kind of argument


def initializer_value(value):
    """`"glorot_uniform"` or `{"class_name": "VarianceScaling", "config": {...}}` ->
    `glorot_uniform` or `VarianceScaling(scale=2.0, ...)` (non-default keys only)."""
    if value is None or isinstance(value, str):
        return None if value is None else Symbol(value)
    if not is_serialized(value):
        raise ImportFailure(f"expected an initializer, got {str(value)[:80]}")
    cls, config = _class_and_config(value)
    canonical = INIT_CLASSES.get(cls, cls)
    if canonical not in INITIALIZERS:
        raise ImportFailure(
            f"the initializer {cls} is not one .kdl knows",
            "use one of Keras's built-in initializers (GlorotUniform, HeNormal, "
            "VarianceScaling, Constant, ...)",
        )
    accepted = INITIALIZERS[canonical]
    kwargs = []
    for key, v in config.items():
        v = plain(v)
        if key in _NULL_INIT_KEYS and v is None:
            continue
        if key not in accepted:
            raise ImportFailure(
                f"initializer {cls} has the setting {key}={v!r}, which .kdl's {cls} lacks",
                "leave it at its default in Keras",
                key=key,
            )
        if v != accepted[key]:
            kwargs.append((key, Symbol(v) if key in ("mode", "distribution") else v))
    name = _INIT_KDL_CLASS.get(canonical, canonical)
    return Spec(name, (), tuple(kwargs)) if kwargs else Symbol(canonical)


def regularizer_value(value):
    if value is None:
        return None
    if isinstance(value, str):
        return Symbol(value.lower())
    if not is_serialized(value):
        raise ImportFailure(f"expected a regularizer, got {str(value)[:80]}")
    cls, config = _class_and_config(value)
    l1, l2 = float(config.get("l1", 0.0) or 0.0), float(config.get("l2", 0.0) or 0.0)
    extra = set(config) - {"l1", "l2"}
    if cls not in ("L1", "L2", "L1L2", "l1", "l2", "l1_l2") or extra:
        raise ImportFailure(
            f"the regularizer {cls} is not one .kdl knows (l1, l2, l1_l2)",
            "use keras.regularizers.L1, L2 or L1L2",
        )
    if l1 and not l2:
        return Spec("l1", (l1,))
    if l2 and not l1:
        return Spec("l2", (l2,))
    return Spec("l1_l2", (), (("l1", l1), ("l2", l2)))


def constraint_value(value):
    if value is None:
        return None
    cls = value.get("class_name") if is_serialized(value) else value
    raise ImportFailure(
        f"the weight constraint {cls} has no .kdl equivalent (ktrans trains without constraints)",
        "remove the constraint in Keras (set it to None) and save the model again",
    )


def activation_value(value):
    """`"relu"` (or Keras's serialized function) -> the symbol `relu`."""
    if value is None:
        return None
    if is_serialized(value):
        cls, config = value.get("class_name"), value.get("config")
        if cls == "function" and isinstance(config, str):
            value = config
        else:
            raise ImportFailure(
                f"the activation {cls} is a custom object .kdl cannot express",
                "use one of Keras's built-in activations by name",
            )
    if not isinstance(value, str):
        raise ImportFailure(f"expected an activation name, got {str(value)[:80]}")
    if value not in ACTIVATIONS and value not in ALIASES:
        raise ImportFailure(
            f"the activation '{value}' is not one .kdl knows",
            "use one of: " + ", ".join(ACTIVATIONS),
        )
    return Symbol(value)


def dtype_name(value) -> str | None:
    """A layer's dtype (a string or a DTypePolicy) -> its name."""
    if value is None or isinstance(value, str):
        return value
    if is_serialized(value):
        _, config = _class_and_config(value)
        name = config.get("name")
        if isinstance(name, str):
            return name
    raise ImportFailure(f"cannot read the dtype {str(value)[:80]}")


def generic_value(value):
    """Anything else: numbers, strings (bare names where they are identifiers), lists."""
    value = plain(value)
    if is_serialized(value):
        raise ImportFailure(
            f"the object {value.get('class_name')} has no .kdl equivalent",
            "leave this argument at its default in Keras",
        )
    if isinstance(value, dict):
        raise ImportFailure("a dict value has no .kdl equivalent here")
    if isinstance(value, str) and IDENTIFIER.fullmatch(value) and value not in KEYWORDS:
        return Symbol(value)
    return value


# ---------------------------------------------------------------- .kdl text


def number_text(x: float) -> str:
    """A float as .kdl writes it, exactly: `1 / 255` where that is the same float."""
    if not math.isfinite(x):
        raise ImportFailure(f"the number {x} cannot be written in .kdl")
    if x != 0 and abs(x) < 1 and len(repr(x)) > 10:
        d = 1 / x
        for denominator in (round(d), round(d * 2) / 2):
            if denominator and 1 / denominator == x and abs(denominator) <= 100_000:
                den = int(denominator) if float(denominator).is_integer() else denominator
                return f"1 / {den}" if den > 0 else f"-1 / {-den}"
    text = repr(float(x))
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def kdl_text(value, *, bare_ok=lambda name: True) -> str:
    """.kdl source for a value. `bare_ok(name)` says whether a Symbol may be written bare
    (it is no variable, const or block of the file); otherwise it is quoted."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, Symbol):
        if IDENTIFIER.fullmatch(value.name) and value.name not in KEYWORDS and bare_ok(value.name):
            return value.name
        return string_text(value.name)
    if isinstance(value, str):
        return string_text(value)
    if isinstance(value, Spec):
        parts = [kdl_text(a, bare_ok=bare_ok) for a in value.args]
        parts += [f"{k}={kdl_text(v, bare_ok=bare_ok)}" for k, v in value.kwargs]
        return f"{value.name}({', '.join(parts)})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(kdl_text(v, bare_ok=bare_ok) for v in value) + "]"
    raise ImportFailure(f"cannot write the value {value!r} in .kdl")


def string_text(s: str) -> str:
    if not re.fullmatch(r"[ -~]*", s) or '"' in s or "\\" in s:
        raise ImportFailure(
            f"the string {s!r} cannot be written in .kdl",
            "use printable ASCII without quotes or backslashes",
        )
    return f'"{s}"'
