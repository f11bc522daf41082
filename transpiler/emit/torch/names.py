"""Safe names for the generated PyTorch module: attributes, local variables, classes.

No name from a .kdl file becomes code unchecked: each is reduced to an ASCII identifier
that is no keyword, builtin or dunder, does not start with an underscore, and is not a
name the generated module or torch.nn.Module already uses (an attribute called `forward`
or `training` would break the module); otherwise a suffix or a neutral name replaces it.
"""

from __future__ import annotations

import re

from transpiler.emit.code.keras_names import CodegenError, is_safe_identifier
from transpiler.layers.base import snake_case

NAME_LIMIT = 32

#: names the generated file binds at module level or imports
MODULE_NAMES = frozenset(
    {"np", "torch", "nn", "math", "KERAS_LAYERS", "keras_weight_places", "keras_to_torch"}
    | {"torch_to_keras", "annotations"}
)

#: the public attributes of torch.nn.Module (torch 2.13), and the generated model's own
NN_MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
        "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval",
        "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
        "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules",
        "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
        "parameters", "register_backward_hook", "register_buffer",
        "register_forward_hook", "register_forward_pre_hook",
        "register_full_backward_hook", "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
        "register_module", "register_parameter", "register_state_dict_post_hook",
        "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
        "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
        "training", "type", "xpu", "zero_grad",
        # the generated model's own methods and class attributes
        "load_keras_weights", "keras_weights", "from_keras_weights", "input_names",
        "output_names",
    }
)  # fmt: skip


def _base(hint: str) -> str:
    base = snake_case(re.sub(r"[^0-9A-Za-z_]+", "_", str(hint)))
    return re.sub(r"_+", "_", base).strip("_")[:NAME_LIMIT].rstrip("_")


class Namer:
    """Unique, safe, lower-case names from hints, avoiding `reserved`."""

    def __init__(self, reserved=frozenset(), fallback: str = "t") -> None:
        self.reserved = frozenset(reserved)
        self.used: set[str] = set()
        self.fallback = fallback
        self.count = 0

    def ok(self, name: str) -> bool:
        return is_safe_identifier(name) and name not in self.reserved

    def fresh(self, hint: str) -> str:
        base = _base(hint)
        if base and base[0].isdigit():
            base = f"{self.fallback}_{base}"
        if base and not self.ok(base):
            base = f"{base}_"  # class -> class_, forward -> forward_
        if not base or not self.ok(base):
            self.count += 1
            base = f"{self.fallback}_{self.count}"
        name, n = base, 0
        while name in self.used or not self.ok(name):
            n += 1
            name = f"{base}_{n}"
        if not self.ok(name):  # cannot happen; never emit an unchecked name
            raise CodegenError(f"unsafe identifier {name!r}")
        self.used.add(name)
        return name

    def take(self, name: str) -> str:
        """Claims a name chosen by the caller (it must be safe and free)."""
        if name in self.used or not self.ok(name):
            return self.fresh(name)
        self.used.add(name)
        return name


def attribute_namer() -> Namer:
    """Names for a module's attributes (one per layer or block)."""
    return Namer(NN_MODULE_ATTRIBUTES | MODULE_NAMES, fallback="layer")


def class_name(hint: str, taken: set[str]) -> str:
    """A CapWords class name from a .kdl model or block name, unique among `taken`."""
    words = re.split(r"[^0-9A-Za-z]+|_", str(hint))
    base = "".join(w[:1].upper() + w[1:] for w in words if w)[:NAME_LIMIT]
    if not base or base[0].isdigit() or not base.isascii():
        base = f"Block{base}" if base.isascii() else "Block"
    name, n = base, 1
    while name in taken or not is_safe_identifier(name) or name in MODULE_NAMES:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def plural(name: str) -> str:
    """`inverted_residual` -> `inverted_residuals`: the ModuleList of a repeat."""
    if name.endswith(("s", "x", "sh", "ch")):
        return f"{name}es"
    if re.search(r"[^aeiou]y$", name):
        return f"{name[:-1]}ies"
    return f"{name}s"
