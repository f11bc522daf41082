"""Python source for the values a generated training script embeds: `py_literal` / `py_str`
render plain data as literals laid out as `ruff format` lays them out, and `checked_finalize`
checks that a metric's finalize expression (which the script's runtime evaluates) is
arithmetic on its statistics with literal constants only."""

from __future__ import annotations

import math

import numpy as np

LINE_LENGTH = 88  # ruff's default, so the script is ruff-clean with or without a config


def plain_data(value):
    """Specs (a schedule as the learning rate, dataclasses) and tuples as plain dicts and
    lists, ready for py_literal."""
    if hasattr(value, "name") and hasattr(value, "kwargs"):
        return {"name": value.name, **{k: plain_data(v) for k, v in value.kwargs.items()}}
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def render_template(name: str, settings: dict) -> str:
    """A training script from the package's Jinja template `name`; `literal` renders a
    value as a Python literal (py_literal), never as code."""
    from importlib import resources

    import jinja2

    source = resources.files("transpiler.templates").joinpath(name).read_text()
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["literal"] = lambda value, label: py_literal(value, 0, f"{label} = ")
    return env.from_string(source).render(**settings)


# ------------------------------------------------------------------ Python literals


def py_str(s: str) -> str:
    """A string literal as ruff formats it: double quotes, unless the string holds more
    double than single quotes; other characters escaped as repr() escapes them."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    body = []
    for ch in s:
        if ch == quote:
            body.append("\\" + ch)
        elif ch in "'\"":
            body.append(ch)
        else:
            body.append(repr(ch)[1:-1])
    return quote + "".join(body) + quote


def py_literal(value, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`value` (None, bool, int, float, str, list, tuple, dict with str keys) as Python
    source, laid out as `ruff format` lays it out: on one line when `prefix`, the value
    and `suffix` fit at `indent`, else one item per line with a trailing comma."""
    flat = _flat(value)
    fits = indent + len(prefix) + len(flat) + len(suffix) <= LINE_LENGTH
    wrapped = indent + 4 + len(flat) <= LINE_LENGTH
    if not fits and wrapped and not _is_container(value) and prefix.endswith(" = ") and not suffix:
        # ruff format puts a long right-hand side of an assignment in parentheses
        # when that makes it fit
        pad = " " * indent
        return f"{pad}{prefix}(\n{pad}    {flat}\n{pad})"
    if fits or not _is_container(value):
        line = " " * indent + prefix + flat + suffix
        if len(line) > LINE_LENGTH:  # E501 where enabled; RUF100 where it is not
            line += "  # noqa: E501, RUF100"
        return line
    pad = " " * indent
    if isinstance(value, dict):
        open_, close = "{", "}"
        items = [py_literal(v, indent + 4, f"{py_str(k)}: ", ",") for k, v in value.items()]
    else:
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [py_literal(v, indent + 4, "", ",") for v in value]
    return "\n".join([pad + prefix + open_, *items, pad + close + suffix])


def _is_container(value) -> bool:
    return isinstance(value, (list, tuple, dict)) and len(value) > 0


def _flat(value) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be strings, got {k!r}")
        return "{" + ", ".join(f"{py_str(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_flat(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _flat(value.item())
    raise TypeError(f"cannot write {type(value).__name__} as a Python literal")


# ------------------------------------------------------------------ finalize expressions


def checked_finalize(expression: str, variables: list[str]) -> str:
    """`expression` if it is a finalize expression as ktrans's metric catalogue writes
    them (the bundle runtime's rule: templates/ktrans_runtime/finalize.py, which the
    script applies again before evaluating it); anything else raises AssertionError, a
    bug in ktrans."""
    from transpiler.templates.ktrans_runtime.finalize import FinalizeError, checked

    try:
        return checked(expression, variables)
    except FinalizeError as e:
        raise AssertionError(str(e)) from None
