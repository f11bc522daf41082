"""The text inside a model diagram: HTML labels of layers, expression ops, blocks, inputs
and the title, and the short Keras-style config a layer box shows (`Conv2D 64 3×3 /2`).

Everything user-supplied that reaches a label goes through `esc`, and everything that
reaches a plain attribute (a tooltip) through `tip`.
"""

from __future__ import annotations

import html
import re

from transpiler.graph.model import Graph, Value
from transpiler.graph.types import keras_shape
from transpiler.layers.base import Layer, snake_case
from transpiler.viz.dot_text import printable, tooltip

_TEXT_LIMIT = 40  # longest config line before it is shortened

# what an expression node shows instead of its op's name
_OP_SYMBOLS = {
    "add": "+",
    "subtract": "−",
    "multiply": "×",
    "divide": "÷",
    "pow": "**",
    "matmul": "@",
}
_FLAG_WORDS = {"return_sequences": "seq", "return_state": "+state", "go_backwards": "reverse"}


# ---------------------------------------------------------------------------- labels


def layer_label(layer: Layer, calls: int, *, show_activations: bool, show_params: bool) -> str:
    """A layer box: its name (and `shared ×N` when it is called `calls` > 1 times), its
    short config, and optionally its activation and parameter count."""
    lines = [f"<B>{esc(layer.name)}</B>"]
    if calls > 1:
        lines[0] += f' <FONT POINT-SIZE="8" COLOR="#a01010">shared ×{calls}</FONT>'
    lines.append(esc(config_text(layer)))
    if show_activations:
        act = activation(layer)
        if act:
            lines.append(f"<I>{esc(act)}</I>")
    if show_params and layer.param_count:
        lines.append(f'<FONT POINT-SIZE="8">{params(layer.param_count)}</FONT>')
    return rows(lines)


def expression_label(layer: Layer, calls: int) -> str:
    """An expression ellipse: its symbol, and `shared ×N` when called more than once."""
    lines = [esc(expression_text(layer))]
    if calls > 1:
        lines.append(f'<FONT POINT-SIZE="7">shared ×{calls}</FONT>')
    return rows(lines)


def block_title(
    instance: str, block_type: str, layers: list[Layer], *, show_params: bool, node: bool
) -> str:
    """`instance · BlockType`: a cluster's label, or (`node`) a collapsed block's box with
    its layer count under it."""
    head = f"<B>{esc(instance)}</B> · {esc(block_type)}"
    if not node:
        if show_params:
            head += f' <FONT POINT-SIZE="8">({params(sum_params(layers))})</FONT>'
        return f"<{head}>"
    detail = f"{len(layers)} layer{'s' if len(layers) != 1 else ''}"
    if show_params:
        detail += f", {params(sum_params(layers))}"
    return rows([head, f'<FONT POINT-SIZE="8">{detail}</FONT>'])


def input_label(v: Value) -> str:
    detail = f"{v.type.dtype} {keras_shape(v.type.shape)}"
    return rows([f"<B>{esc(v.name)}</B>", f'<FONT POINT-SIZE="9">{esc(detail)}</FONT>'])


def title_head(g: Graph, *, show_params: bool) -> str:
    """The model's name, with its parameter counts when `show_params`."""
    head = f'<FONT POINT-SIZE="14"><B>{esc(g.name)}</B></FONT>'
    if show_params:
        detail = f"{g.param_count:,} params"
        if g.non_trainable_count:
            detail += f" ({g.non_trainable_count:,} non-trainable)"
        head += f'<FONT POINT-SIZE="11">  ·  {detail}</FONT>'
    return head


def rows(lines: list[str]) -> str:
    """An HTML label of one or more lines. A table, not <BR/>: with <BR/> the lines sit
    so close that the underscores of a bold name touch the line below."""
    if len(lines) == 1:
        return f"<{lines[0]}>"
    body = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>>'


def esc(text: str) -> str:
    return html.escape(printable(str(text)), quote=True)


def tip(text: str) -> str:
    """A tooltip: printable, with backslashes made literal."""
    return tooltip(text, 300, " ")


def params(n: int) -> str:
    return f"{n:,} param{'s' if n != 1 else ''}"


def sum_params(layers: list[Layer]) -> int:
    return sum(la.param_count for la in layers)


# ---------------------------------------------------------------------------- config text


def _shorten(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_args(text: str) -> list[str]:
    """Split `a, [b, c], d(e, f)` at the top-level commas."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    if last:
        parts.append(last)
    return parts


_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$", re.S)
_GRID = re.compile(r"^\d+(?:x\d+)+$")
_NUMBERS = re.compile(r"^\[?\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\]?$")


def _compact(description: str, drop: str | None = None) -> str:
    """`Conv2D(64, 3x3, strides=[2, 2], same, relu)` -> `Conv2D 64 3×3 /2 same relu`
    (without `drop`, the activation shown on a line of its own or not at all)."""
    m = _CALL.match(description.strip())
    if not m:
        return description
    words = [m.group(1)]
    for part in _split_args(m.group(2)):
        if drop is not None and part == drop:
            continue
        if _GRID.match(part):
            part = part.replace("x", "×")
        elif part.startswith("strides=") or part.startswith("stride="):
            nums = _NUMBERS.match(part.split("=", 1)[1])
            if nums:
                values = [int(v) for v in re.split(r"\s*,\s*", nums.group(1))]
                part = "/" + (
                    str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))
                )
        elif len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            part = part[1:-1]  # describe() quotes strings: Activation('relu')
        elif part in _FLAG_WORDS:
            part = _FLAG_WORDS[part]
        elif _CALL.match(part):
            part = _compact(part, drop)
        words.append(part)
    return " ".join(words)


def activation(layer: Layer) -> str | None:
    value = layer.config.get("activation")
    if value is None or layer.family == "activation":
        return None
    name = value if isinstance(value, str) else getattr(value, "name", None) or str(value)
    return None if name == "linear" else name


def config_text(layer: Layer) -> str:
    """The Keras class and its key settings, e.g. `Conv2D 64 3×3 /2 same`."""
    try:
        description = layer.describe_config()
    except Exception:  # a half-written layer must not stop the diagram
        description = layer.keras_class()
    drop = activation(layer) if layer.family != "activation" else None
    text = _compact(description, drop)
    if not text.startswith(layer.keras_class()):
        text = f"{layer.keras_class()} {text}"
    return _shorten(text)


def expression_text(layer: Layer) -> str:
    """What an expression node shows: `+`, `relu`, `mean`, `[:, 2:5]`, `− 0.5`..."""
    cfg = layer.config
    if "op" in cfg:
        op = cfg["op"]
        symbol = _OP_SYMBOLS.get(op, op)
        # the evaluator sets scalar_left on the layer after creating it (`1 - x`)
        scalar = getattr(layer, "scalar", None)
        if scalar is not None:
            value = f"{scalar:g}" if isinstance(scalar, float) else str(scalar)
            left = getattr(layer, "scalar_left", False)
            return f"{value} {symbol}" if left else f"{symbol} {value}"
        return symbol
    if "items" in cfg:
        return _index_text(cfg["items"])
    if "fn" in cfg:
        return str(cfg["fn"])
    kind = type(layer).__name__
    if kind == "MatMul":
        return "@"
    if kind == "ReshapeTo":
        return "flatten" if tuple(cfg.get("target", ())) == (-1,) else "reshape"
    if kind == "Clip":
        return f"clip {cfg.get('lo')}..{cfg.get('hi')}"
    try:
        text = layer.describe_config()
    except Exception:
        text = ""
    if text and "(" not in text:
        return _shorten(text, 24)
    return snake_case(kind)


def _index_text(items) -> str:
    parts = [":"]
    for item in items:
        if item[0] == "index":
            parts.append(str(item[1]))
            continue
        _, start, stop, step = item
        s = f"{'' if start is None else start}:{'' if stop is None else stop}"
        if step not in (None, 1):
            s += f":{step}"
        parts.append(s)
    return _shorten("[" + ", ".join(parts) + "]", 24)
