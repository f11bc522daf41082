"""Layers as Keras constructor calls: arguments that differ from the Keras defaults,
initializers and regularizers as `keras.initializers` / `keras.regularizers` objects.
"""

from __future__ import annotations

from transpiler.emit.code.keras_custom import CUSTOM_CLASSES
from transpiler.emit.code.keras_names import checked, lit, pystr
from transpiler.emit.code.keras_render import KW, Atom, Call, Expr, call
from transpiler.layers.base import REQUIRED, Arg, Layer
from transpiler.layers.initializers import CLASS_NAMES, INITIALIZERS, Initializer
from transpiler.layers.regularizers import Regularizer


def normalized(value):
    """A config value in a form where equal meaning compares equal."""
    if isinstance(value, Initializer):
        spec = INITIALIZERS.get(value.name, {})
        return ("init", value.name, tuple((k, value.get(k)) for k in spec))
    if isinstance(value, list):
        return tuple(normalized(v) for v in value)
    if isinstance(value, tuple):
        return tuple(normalized(v) for v in value)
    return value


def is_default(arg: Arg, value) -> bool:
    if arg.default is REQUIRED:
        return False
    if arg.name == "data_format":
        return value in (None, "channels_last")  # Keras's default image_data_format
    try:
        default = arg.convert(arg.default)
    except Exception:
        return False
    return normalized(value) == normalized(default)


def compact(arg: Arg, value):
    """(3, 3) -> 3, ((1, 1), (1, 1)) -> 1: the shortest form the argument converts back
    to the same value, as people write Keras."""
    short = value
    while isinstance(short, tuple) and short and all(v == short[0] for v in short):
        try:
            if arg.convert(short[0]) != value:
                break
        except Exception:
            break
        short = short[0]
    return short


_INIT_CLASSES = {canon: cls for cls, canon in CLASS_NAMES.items() if cls[:1].isupper()}


def initializer_parts(init: Initializer) -> tuple[str, dict]:
    """(keras.initializers class, the arguments that differ from its defaults)."""
    cls = _INIT_CLASSES.get(init.name) or "".join(p.title() for p in init.name.split("_"))
    spec = INITIALIZERS.get(init.name, {})
    return checked(cls), {k: init.get(k) for k in spec if init.get(k) != spec[k]}


def initializer_expr(init: Initializer) -> Expr:
    cls, kwargs = initializer_parts(init)
    return call(f"keras.initializers.{cls}", **{k: Atom(lit(v)) for k, v in kwargs.items()})


def regularizer_parts(reg: Regularizer) -> tuple[str, dict]:
    """(keras.regularizers class, its arguments)."""
    if reg.l1 and not reg.l2:
        return "L1", {"l1": reg.l1}
    if reg.l2 and not reg.l1:
        return "L2", {"l2": reg.l2}
    return "L1L2", {"l1": reg.l1, "l2": reg.l2}


def regularizer_expr(reg: Regularizer) -> Expr:
    cls, kwargs = regularizer_parts(reg)
    if cls == "L1L2":
        return call("keras.regularizers.L1L2", **{k: Atom(lit(v)) for k, v in kwargs.items()})
    return call(f"keras.regularizers.{cls}", Atom(lit(next(iter(kwargs.values())))))


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def value_expr(arg: Arg, value) -> Expr:
    if getattr(arg.convert, "keras_writes_lists", False):
        return Atom(lit(_lists(value)))  # Rescaling's scale: a list, as Keras users write it
    if isinstance(value, Layer):
        return layer_expr(value)
    if isinstance(value, Initializer):
        return initializer_expr(value)
    if isinstance(value, Regularizer):
        return regularizer_expr(value)
    return Atom(lit(compact(arg, value)))


def written_args(layer: Layer) -> list[tuple[Arg, object, bool]]:
    """The arguments the Keras code writes, in order: (Arg, value, by position):
    required arguments by position, the others where they differ from Keras's default."""
    out = []
    positional = True
    for a in layer.signature:
        value = layer.config.get(a.name)
        if a.required and positional:
            out.append((a, value, True))
            continue
        positional = False
        if not is_default(a, value):
            out.append((a, value, False))
    return out


def layer_expr(layer: Layer) -> Call:
    """`layers.Dense(512, activation="relu", name="dense")`: required arguments by
    position, the others by name where they differ from Keras's defaults."""
    args: list[Expr] = []
    for a, value, by_position in written_args(layer):
        expr = value_expr(a, value)
        args.append(expr if by_position else KW(checked(a.name), expr))
    if not layer.trainable:
        args.append(KW("trainable", Atom("False")))
    args.append(KW("name", Atom(pystr(layer.name))))
    cls = checked(layer.keras_class())
    if cls in CUSTOM_CLASSES:  # defined in the generated module itself
        return Call(Atom(cls), args)
    return Call(Atom(f"layers.{cls}"), args)
