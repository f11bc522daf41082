"""Writes docs/layers.md from the layer catalogue (signatures, Keras defaults, docstrings).

Run: .venv/bin/python tools/gen_layer_docs.py        (tests/test_docs.py checks it is current)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transpiler.layers import LAYERS  # noqa: E402
from transpiler.layers.activations import ACTIVATIONS  # noqa: E402
from transpiler.layers.base import COMMON_ARGS  # noqa: E402
from transpiler.layers.initializers import INITIALIZERS  # noqa: E402
from transpiler.layers.regularizers import REGULARIZERS  # noqa: E402

FAMILY_TITLES = {
    "dense": "Core",
    "core": "Core",
    "embedding": "Core",
    "activation": "Activations",
    "regularization": "Regularization",
    "conv": "Convolution",
    "pooling": "Pooling",
    "reshape": "Reshaping",
    "normalization": "Normalization",
    "recurrent": "Recurrent",
    "merge": "Merging",
    "attention": "Attention",
    "preprocessing": "Preprocessing",
}
ORDER = [
    "Core",
    "Activations",
    "Regularization",
    "Convolution",
    "Pooling",
    "Reshaping",
    "Normalization",
    "Recurrent",
    "Merging",
    "Attention",
    "Preprocessing",
    "Other",
]


def _default(value) -> str:
    from transpiler.layers.base import REQUIRED

    if value is REQUIRED:
        return "*required*"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value).replace("'", "")


def render() -> str:
    groups: dict[str, list] = {}
    for _, cls in sorted(LAYERS.items()):
        groups.setdefault(FAMILY_TITLES.get(cls.family, "Other"), []).append(cls)
    out = [
        "# Layer catalogue",
        "",
        "Generated from the code by `tools/gen_layer_docs.py`; do not edit by hand.",
        "Names, argument order and defaults are Keras 3's. Positional arguments bind in the",
        "order shown. Every layer also takes "
        + ", ".join(f"`{a.name}`" for a in COMMON_ARGS)
        + " (dtype float32 only). Shapes include the batch axis, as Keras prints them.",
        "",
        "Contents: " + ", ".join(f"[{g}](#{g.lower()})" for g in ORDER if g in groups),
        "",
    ]
    for group in ORDER:
        if group not in groups:
            continue
        out += [f"## {group}", ""]
        for cls in groups[group]:
            doc = inspect.cleandoc(cls.__doc__ or "").strip()
            out += [f"### {cls.__name__}", ""]
            if doc:
                out += [doc, ""]
            if cls.signature:
                out += ["| argument | default |", "|---|---|"]
                out += [f"| `{a.name}` | {_default(a.default)} |" for a in cls.signature]
                out.append("")
            lo, hi = cls.num_inputs
            if (lo, hi) != (1, 1):
                many = f"{lo} or more" if hi is None else f"{lo} to {hi}" if lo != hi else lo
                out += [f"Takes {many} input tensors.", ""]
    out += [
        "## Activations, initializers, regularizers",
        "",
        "Activation names: " + ", ".join(f"`{a}`" for a in ACTIVATIONS) + ".",
        "",
        "Initializers (snake_case or Keras class names, e.g. `RandomNormal(stddev=0.02)`): "
        + ", ".join(f"`{i}`" for i in INITIALIZERS)
        + ".",
        "",
        "Regularizers: "
        + ", ".join(f"`{r}`" for r in REGULARIZERS)
        + " (e.g. `kernel_regularizer=l2(1e-4)`; default factor 0.01 as in Keras).",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    target = ROOT / "docs/layers.md"
    target.write_text(render())
    print(f"wrote {target} ({len(LAYERS)} layers)")


if __name__ == "__main__":
    main()
