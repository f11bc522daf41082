"""Keras's metric `result()` in numpy, for statistics added up over batches, and the
check of the expressions that call it.

A metric plan entry (metrics.py) says how its logged value comes from its combined
statistics as a Python expression, e.g. `first_or_list(divide_no_nan(tp, tp + fp))` for
precision. ktrans writes these expressions from its own metric catalogue; `checked`
accepts only arithmetic and calls of `np.<function>`, `float` and the helpers below on
the statistics, with literal constants (so a string from a .kdl file, such as an AUC
curve, can only be a string constant). ktrans checks each expression when it writes a
script, and the run checks it again before evaluating it.
"""

from __future__ import annotations

import ast

import numpy as np


def divide_no_nan(x, y):
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    out = np.zeros(x.shape)
    np.divide(x, y, out=out, where=y != 0)
    return out


def first_or_list(values):
    values = np.asarray(values, np.float64).reshape(-1)
    return float(values[0]) if values.size == 1 else [float(v) for v in values]


def auc_result(
    tp,
    fp,
    tn,
    fn,
    curve="ROC",
    summation_method="interpolation",
    multi_label=False,
    label_weights=None,
):
    """keras.metrics.AUC.result() on summed confusion counts."""
    tp, fp, tn, fn = (np.asarray(a, np.float64) for a in (tp, fp, tn, fn))

    def by_label(terms):
        if not multi_label:
            return float(np.sum(terms))
        per_label = np.sum(terms, axis=0)
        if label_weights is None:
            return float(np.mean(per_label))
        w = np.asarray(label_weights, np.float64)
        return float(divide_no_nan(np.sum(per_label * w), np.sum(w)))

    if curve == "PR" and summation_method == "interpolation":
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(ratio)
        terms = divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))
        return by_label(terms)
    recall = divide_no_nan(tp, tp + fn)
    if curve == "ROC":
        x, y = divide_no_nan(fp, fp + tn), recall
    elif curve == "PR":
        x, y = recall, divide_no_nan(tp, tp + fp)
    else:  # PRGAIN
        scale = divide_no_nan(tp + fn, tn + fp)
        recall_gain = 1.0 - scale * divide_no_nan(fn, tp)
        precision_gain = 1.0 - scale * divide_no_nan(fp, tp)
        recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
        precision_gain = np.where(tp == 0, 1.0, precision_gain)
        x, y = recall_gain, precision_gain
    if summation_method == "interpolation":
        heights = (y[:-1] + y[1:]) / 2.0
    elif summation_method == "minoring":
        heights = np.minimum(y[:-1], y[1:])
    else:
        heights = np.maximum(y[:-1], y[1:])
    return by_label((x[:-1] - x[1:]) * heights)


#: What an expression may call besides its statistics
HELPERS = {
    "divide_no_nan": divide_no_nan,
    "first_or_list": first_or_list,
    "auc_result": auc_result,
}
BUILTINS = {"np": np, "float": float}

_NODES = (
    ast.Expression,
    ast.Call,
    ast.keyword,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


class FinalizeError(ValueError):
    """An expression that is not one ktrans writes."""


def checked(expression: str, variables) -> str:
    """`expression` if it uses only what the module docstring allows, else
    FinalizeError."""
    allowed = {*BUILTINS, *HELPERS, *variables}
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        message = f"the finalize expression {expression!r} is not one ktrans writes: {e}"
        raise FinalizeError(message) from None
    for node in ast.walk(tree):
        ok = isinstance(node, _NODES)
        if isinstance(node, ast.Name):
            ok = node.id in allowed
        elif isinstance(node, ast.Attribute):
            base = node.value
            ok = isinstance(base, ast.Name) and base.id == "np" and not node.attr.startswith("_")
        elif isinstance(node, ast.Constant):
            ok = node.value is None or isinstance(node.value, (bool, int, float, str))
        elif isinstance(node, ast.keyword):
            ok = node.arg is not None
        if not ok:
            raise FinalizeError(
                f"the finalize expression {expression!r} is not one ktrans writes: "
                f"it holds {ast.dump(node)}"
            )
    return expression


def compile_finalize(expression: str, variables):
    """A callable stats -> logged value, for a checked expression."""
    code = compile(checked(expression, variables), "<finalize>", "eval")
    names = {"__builtins__": {}, **BUILTINS, **HELPERS}

    def finalize(stats: dict):
        return eval(code, names, dict(stats))

    return finalize
