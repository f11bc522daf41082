"""VJP rules of Gemm, MatMul, Einsum, Softmax and LogSoftmax."""

from __future__ import annotations

from transpiler.emit.train.grad import vjp
from transpiler.emit.train.grad.elementwise import _attr


@vjp("Gemm")
def _gemm(g, node, grads):
    (dy,) = grads
    a, b = node.input[0], node.input[1]
    alpha = _attr(node, "alpha", 1.0)
    beta = _attr(node, "beta", 1.0)
    ta, tb = _attr(node, "transA", 0), _attr(node, "transB", 0)
    # Y = alpha * A' B' + beta * C with A' = op(A), B' = op(B)
    if ta:
        da = g.op("Gemm", [b, dy], alpha=alpha, transA=tb, transB=1)
    else:
        da = g.op("Gemm", [dy, b], alpha=alpha, transB=0 if tb else 1)
    if tb:
        db = g.op("Gemm", [dy, a], alpha=alpha, transA=1, transB=ta)
    else:
        db = g.op("Gemm", [a, dy], alpha=alpha, transA=0 if ta else 1)
    out = [da, db]
    if len(node.input) > 2 and node.input[2]:
        dc = g.unbroadcast(dy, node.input[2], node.output[0])
        if beta != 1.0:
            dc = g.op("Mul", [dc, g.const(beta)])
        out.append(dc)
    return out


def _swap_last(g, name: str) -> str:
    rank = g.rank(name)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return g.op("Transpose", [name], perm=perm)


@vjp("MatMul")
def _matmul(g, node, grads):
    (dy,) = grads
    a, b = node.input
    y = node.output[0]
    if g.rank(a) < 2 or g.rank(b) < 2:
        raise NotImplementedError("MatMul with a rank-1 operand")
    da = g.op("MatMul", [dy, _swap_last(g, b)])
    db = g.op("MatMul", [_swap_last(g, a), dy])
    # both products have the broadcast batch shape of y; sum it away where a or b had none
    ya, yb = g.shape(y), g.shape(y)
    g.shapes[da] = (*ya[:-2], *g.shape(a)[-2:])
    g.shapes[db] = (*yb[:-2], *g.shape(b)[-2:])
    return [g.unbroadcast(da, a, da), g.unbroadcast(db, b, db)]


@vjp("Softmax")
def _softmax(g, node, grads):
    (dy,) = grads
    y = node.output[0]
    axis = _attr(node, "axis", -1)
    inner = g.op("ReduceSum", [g.op("Mul", [dy, y]), g.ints([axis])], keepdims=1)
    return [g.op("Mul", [y, g.op("Sub", [dy, inner])])]


@vjp("LogSoftmax")
def _log_softmax(g, node, grads):
    (dy,) = grads
    y = node.output[0]
    axis = _attr(node, "axis", -1)
    total = g.op("ReduceSum", [dy, g.ints([axis])], keepdims=1)
    return [g.op("Sub", [dy, g.op("Mul", [g.op("Exp", [y]), total])])]


def _einsum_terms(equation: str) -> tuple[list[str], str]:
    """'bij,bjk->bik' -> (['bij', 'bjk'], 'bik'); explicit output only, no ellipsis, no
    letter repeated within one term (no diagonals)."""
    equation = equation.replace(" ", "")
    if "->" not in equation or "..." in equation:
        raise NotImplementedError(f"Einsum '{equation}': only explicit equations without '...'")
    left, out = equation.split("->")
    terms = left.split(",")
    for term in [*terms, out]:
        if len(set(term)) != len(term):
            raise NotImplementedError(f"Einsum '{equation}': a letter repeated within a term")
    return terms, out


@vjp("Einsum")
def _einsum(g, node, grads):
    # d term_i = einsum(dY, the other terms -> term_i): every letter of term_i is either
    # in the output (taken from dY) or in another term (summed there)
    (dy,) = grads
    terms, out = _einsum_terms(_attr(node, "equation", ""))
    result = []
    for i, term in enumerate(terms):
        others = [t for j, t in enumerate(terms) if j != i]
        lost = set(term) - set(out) - set("".join(others))
        if lost:
            raise NotImplementedError(
                f"Einsum '{','.join(terms)}->{out}' sums axes {''.join(sorted(lost))} of one "
                "operand alone"
            )
        inputs = [dy] + [n for j, n in enumerate(node.input) if j != i]
        equation = f"{','.join([out, *others])}->{term}"
        result.append(g.record(g.op("Einsum", inputs, equation=equation), node.input[i]))
    return result
