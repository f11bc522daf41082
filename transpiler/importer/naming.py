"""Names in the written .kdl file: variables for tensors and shared layers, block names,
and which Keras layer names the file must spell out.

ktrans names a layer without `name=` as Keras names a fresh one: snake_case of its class
with a counter (`conv2d`, `conv2d_1`), where expression nodes (`x + 3.0` is `add`) and
block instances share the counters (transpiler/graph/builder.py `unique_name`).
`LayerNames` replays that in the order the file creates things, so a Keras name is
written only where ktrans would not give it anyway.
"""

from __future__ import annotations

import re

from transpiler.importer.values import KEYWORDS
from transpiler.layers import LAYERS
from transpiler.layers.base import snake_case
from transpiler.layers.expressions import FUNCTIONS

#: names a variable cannot take: keywords, layer classes, functions
_INTROSPECTION = ("shape",)
RESERVED = frozenset(KEYWORDS) | frozenset(LAYERS) | frozenset(FUNCTIONS) | set(_INTROSPECTION)
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def identifier(text: str) -> str:
    """A .kdl identifier made from `text`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "t"
    if name[0].isdigit():
        name = f"t_{name}"
    return name


def model_identifier(text: str) -> str:
    """A model name: an identifier that is no keyword."""
    name = identifier(text)
    return f"{name}_" if name in KEYWORDS else name


class Variables:
    """Unique variable names, none of them reserved."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())

    def fresh(self, hint: str) -> str:
        base = identifier(hint)
        candidates = [base, f"{base}_"] + [f"{base}_{i}" for i in range(2, 10_000)]
        for name in candidates:
            if name not in self.taken and name not in RESERVED:
                self.taken.add(name)
                return name
        raise AssertionError("no free name")  # 10,000 variables from one hint


def block_name(model_name: str, taken: set[str]) -> str:
    """`convnext_tiny_stem` -> `ConvnextTinyStem` (its instance is then named
    `convnext_tiny_stem`, as Keras named the nested model; `block_0` -> `Block_0`, whose
    instance is `block_0`, where `Block0` would give `block0`)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", model_name) if p]
    name = "".join(
        ("_" if i and p[0].isdigit() else "") + p[:1].upper() + p[1:] for i, p in enumerate(parts)
    )
    name = name or "Block"
    if name[0].isdigit():
        name = f"B{name}"
    base, i = name, 2
    while name in taken or name in RESERVED:
        name, i = f"{base}{i}", i + 1
    taken.add(name)
    return name


class LayerNames:
    """Replays ktrans's automatic naming (builder.unique_name) over the file's creations."""

    def __init__(self, force: set[str] | None = None) -> None:
        self.counts: dict[str, int] = {}
        self.used: set[str] = set()
        #: Keras names to write whatever the replay says (found wrong by a check)
        self.force = set(force or ())

    def auto(self, base: str) -> str:
        n = self.counts.get(base, 0)
        name = base if n == 0 else f"{base}_{n}"
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.counts[base] = n + 1
        self.used.add(name)
        return name

    def layer(self, keras_class: str, keras_name: str) -> str | None:
        """A layer of `keras_class` named `keras_name` is created: the name the file must
        write, or None where ktrans gives it that name anyway. A name an expression or a
        block instance took already (ktrans numbers them in its own order) cannot be had:
        the layer is renamed (`add_1_2`), and the weights follow the rename."""
        base = snake_case(keras_class)
        if keras_name in self.used:
            name, i = f"{keras_name}_2", 3
            while name in self.used:
                name, i = f"{keras_name}_{i}", i + 1
            self.used.add(name)
            return name
        if keras_name in self.force:
            self.used.add(keras_name)
            return keras_name
        n = self.counts.get(base, 0)
        predicted = base if n == 0 else f"{base}_{n}"
        while predicted in self.used:
            n += 1
            predicted = f"{base}_{n}"
        if predicted == keras_name:
            self.auto(base)
            return None
        self.used.add(keras_name)
        return keras_name

    def expression(self, fn: str) -> None:
        self.auto(fn)

    def block(self, block: str) -> str:
        return self.auto(snake_case(block))
