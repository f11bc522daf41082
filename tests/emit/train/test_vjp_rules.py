"""Every VJP rule, from a table: against finite differences and torch autograd."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.emit.train.vjp_harness import analytic, numeric, torch_grads

torch = pytest.importorskip("torch")
F = torch.nn.functional


@dataclass
class Case:
    id: str
    forward: object  # (builder, input names) -> output name
    shapes: list
    out_shape: tuple
    torch: object
    int_inputs: tuple = ()
    no_grad: tuple = ()
    int_high: int = 5
    sample: object = field(default=lambda rng, s: rng.normal(size=s))
    # onnx's reference Erf computes in float32: finite differences need a wider step there
    fd_eps: float = 1e-6
    fd_rtol: float = 1e-5


def unary(op, torch_fn, shape=(2, 3), sample=None, fd=None, **attrs):
    kw = {"sample": sample} if sample else {}
    if fd:
        kw.update(fd_eps=fd[0], fd_rtol=fd[1])
    return Case(op, lambda b, n: b.op(op, [n[0]], **attrs), [shape], shape, torch_fn, **kw)


def binary(op, torch_fn, a=(2, 3), c=(2, 3), out=(2, 3), sample=None):
    kw = {"sample": sample} if sample else {}
    return Case(f"{op}-{a}-{c}", lambda b, n: b.op(op, [n[0], n[1]]), [a, c], out, torch_fn, **kw)


positive = lambda rng, s: rng.uniform(0.5, 2.0, size=s)  # noqa: E731
away_from_zero = lambda rng, s: rng.choice([-1, 1], size=s) * rng.uniform(0.2, 2, size=s)  # noqa: E731


def _const(b, value):
    return b.const(np.asarray(value, np.float64), np.float64)


CASES = [
    binary("Add", torch.add),
    binary("Add", torch.add, a=(2, 3), c=(3,)),
    binary("Sub", torch.sub, a=(2, 1), c=(1, 3)),
    binary("Mul", torch.mul, a=(4, 2, 3), c=(2, 1)),
    binary("Div", torch.div, sample=positive),
    binary("Pow", torch.pow, sample=positive),
    binary("Max", torch.maximum),
    binary("Min", torch.minimum),
    unary("Neg", torch.neg),
    unary("Exp", torch.exp),
    unary("Log", torch.log, sample=positive),
    unary("Sqrt", torch.sqrt, sample=positive),
    unary("Reciprocal", torch.reciprocal, sample=positive),
    unary("Abs", torch.abs, sample=away_from_zero),
    unary("Sin", torch.sin),
    unary("Cos", torch.cos),
    unary("Relu", torch.relu, sample=away_from_zero),
    unary("LeakyRelu", lambda x: F.leaky_relu(x, 0.2), sample=away_from_zero, alpha=0.2),
    unary("Sigmoid", torch.sigmoid),
    unary("Tanh", torch.tanh),
    unary("Softplus", F.softplus),
    unary("Softsign", F.softsign),
    unary("Elu", F.elu, sample=away_from_zero),
    unary("Selu", F.selu, sample=away_from_zero),
    unary("Erf", torch.erf, fd=(1e-2, 1e-3)),
    unary("Gelu", F.gelu, fd=(1e-2, 1e-3)),
    unary("Mish", F.mish),
    unary(
        "HardSigmoid",
        lambda x: F.relu6(x + 3) / 6,
        sample=lambda r, s: r.uniform(-2.5, 2.5, s),
        alpha=1 / 6,
        beta=0.5,
    ),
    unary("HardSwish", F.hardswish, sample=lambda r, s: r.uniform(-2.5, 2.5, s)),
    unary("Identity", lambda x: x),
    unary("Softmax", lambda x: torch.softmax(x, -1), axis=-1),
    unary("LogSoftmax", lambda x: torch.log_softmax(x, 1), shape=(2, 3, 4), axis=1),
    Case(
        "Clip",
        lambda b, n: b.op("Clip", [n[0], _const(b, -0.5), _const(b, 0.5)]),
        [(2, 3)],
        (2, 3),
        lambda x: torch.clamp(x, -0.5, 0.5),
        sample=lambda r, s: r.uniform(-1, 1, s),
    ),
    Case(
        "Gemm",
        lambda b, n: b.op("Gemm", [n[0], n[1], n[2]]),
        [(2, 3), (3, 4), (4,)],
        (2, 4),
        lambda a, w, c: a @ w + c,
    ),
    Case(
        "Gemm-transposed",
        lambda b, n: b.op("Gemm", [n[0], n[1]], transA=1, transB=1, alpha=0.5),
        [(3, 2), (4, 3)],
        (2, 4),
        lambda a, w: 0.5 * a.T @ w.T,
    ),
    Case(
        "MatMul-3x2",
        lambda b, n: b.op("MatMul", [n[0], n[1]]),
        [(2, 5, 3), (3, 4)],
        (2, 5, 4),
        torch.matmul,
    ),
    Case(
        "MatMul-batched",
        lambda b, n: b.op("MatMul", [n[0], n[1]]),
        [(2, 5, 3), (2, 3, 4)],
        (2, 5, 4),
        torch.matmul,
    ),
    Case(
        "Reshape",
        lambda b, n: b.op("Reshape", [n[0], b.ints([2, 12])]),
        [(2, 3, 4)],
        (2, 12),
        lambda x: x.reshape(2, 12),
    ),
    Case(
        "Flatten",
        lambda b, n: b.op("Flatten", [n[0]]),
        [(2, 3, 4)],
        (2, 12),
        lambda x: x.reshape(2, 12),
    ),
    Case(
        "Transpose",
        lambda b, n: b.op("Transpose", [n[0]], perm=[0, 2, 1]),
        [(2, 3, 4)],
        (2, 4, 3),
        lambda x: x.permute(0, 2, 1),
    ),
    Case(
        "Concat",
        lambda b, n: b.op("Concat", [n[0], n[1]], axis=1),
        [(2, 3), (2, 2)],
        (2, 5),
        lambda a, c: torch.cat([a, c], 1),
    ),
    Case(
        "Split",
        lambda b, n: b.op("Mul", b.op("Split", [n[0], b.ints([1, 2])], outputs=2, axis=1)),
        [(2, 3, 2)],
        (2, 2, 2),
        lambda x: x[:, :1] * x[:, 1:],
    ),
    Case(
        "Slice",
        lambda b, n: b.op("Slice", [n[0], b.ints([1]), b.ints([3]), b.ints([1])]),
        [(2, 4)],
        (2, 2),
        lambda x: x[:, 1:3],
    ),
    Case(
        "Slice-strided",
        lambda b, n: b.op("Slice", [n[0], b.ints([0]), b.ints([5]), b.ints([1]), b.ints([2])]),
        [(2, 5)],
        (2, 3),
        lambda x: x[:, 0:5:2],
    ),
    Case(
        "Squeeze",
        lambda b, n: b.op("Squeeze", [n[0], b.ints([1])]),
        [(2, 1, 3)],
        (2, 3),
        lambda x: x.squeeze(1),
    ),
    Case(
        "Unsqueeze",
        lambda b, n: b.op("Unsqueeze", [n[0], b.ints([1])]),
        [(2, 3)],
        (2, 1, 3),
        lambda x: x.unsqueeze(1),
    ),
    Case(
        "Pad",
        lambda b, n: b.op("Pad", [n[0], b.ints([0, 1, 0, 2])]),
        [(2, 3)],
        (2, 6),
        lambda x: F.pad(x, (1, 2)),
    ),
    Case(
        "Gather",
        lambda b, n: b.op("Gather", [n[0], n[1]], axis=0),
        [(5, 3), (2, 4)],
        (2, 4, 3),
        lambda e, i: e[i],
        int_inputs=(1,),
    ),
    Case(
        "ReduceSum",
        lambda b, n: b.op("ReduceSum", [n[0], b.ints([1])], keepdims=0),
        [(2, 3, 4)],
        (2, 4),
        lambda x: x.sum(1),
    ),
    Case(
        "ReduceMean",
        lambda b, n: b.op("ReduceMean", [n[0], b.ints([-1])], keepdims=1),
        [(2, 3)],
        (2, 1),
        lambda x: x.mean(-1, keepdim=True),
    ),
    Case(
        "ReduceMax",
        lambda b, n: b.op("ReduceMax", [n[0], b.ints([1])], keepdims=0),
        [(2, 3)],
        (2,),
        lambda x: x.amax(1),
    ),
    Case(
        "Where",
        lambda b, n: b.op("Where", [b.op("Greater", [n[0], _const(b, 0.0)]), n[0], n[1]]),
        [(2, 3), (3,)],
        (2, 3),
        lambda x, y: torch.where(x > 0, x, y),
        sample=away_from_zero,
    ),
    Case(
        "PRelu-per-channel",
        lambda b, n: b.op("PRelu", [n[0], n[1]]),
        [(2, 3, 4), (3, 1)],
        (2, 3, 4),
        lambda x, a: torch.where(x > 0, x, a * x),
        sample=away_from_zero,
    ),
    Case(
        "PRelu-full",
        lambda b, n: b.op("PRelu", [n[0], n[1]]),
        [(2, 3), (1, 3)],
        (2, 3),
        lambda x, a: torch.where(x > 0, x, a * x),
        sample=away_from_zero,
    ),
    Case(
        "Einsum-batch-dot",
        lambda b, n: b.op("Einsum", [n[0], n[1]], equation="bij,bjk->bik"),
        [(2, 3, 4), (2, 4, 5)],
        (2, 3, 5),
        lambda x, y: torch.einsum("bij,bjk->bik", x, y),
    ),
    Case(
        "Einsum-contract-two-axes",
        lambda b, n: b.op("Einsum", [n[0], n[1]], equation="bcde,bfdc->bef"),
        [(2, 3, 4, 2), (2, 3, 4, 3)],
        (2, 2, 3),
        lambda x, y: torch.einsum("bcde,bfdc->bef", x, y),
    ),
    Case(
        "Einsum-vectors",
        lambda b, n: b.op("Einsum", [n[0], n[1]], equation="bc,bc->b"),
        [(3, 4), (3, 4)],
        (3,),
        lambda x, y: torch.einsum("bc,bc->b", x, y),
    ),
    Case(
        "Resize-nearest",
        lambda b, n: b.op(
            "Resize",
            [n[0], "", b.const([1.0, 1.0, 2.0, 3.0], np.float32, "scales")],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        [(2, 2, 3, 2)],
        (2, 2, 6, 6),
        lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest"),
    ),
    Case(
        "Resize-nearest-1d",
        lambda b, n: b.op(
            "Resize",
            [n[0], "", b.const([1.0, 3.0, 1.0], np.float32, "scales")],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        [(2, 4, 3)],
        (2, 12, 3),
        lambda x: x.repeat_interleave(3, dim=1),
    ),
    Case(
        "Resize-bilinear",
        lambda b, n: b.op(
            "Resize",
            [n[0], "", b.const([1.0, 1.0, 3.0, 2.0], np.float32, "scales")],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        [(2, 2, 3, 4)],
        (2, 2, 9, 8),
        lambda x: F.interpolate(x, scale_factor=(3, 2), mode="bilinear", align_corners=False),
    ),
    Case(
        "Expand",
        lambda b, n: b.op("Expand", [n[0], b.ints([2, 3])]),
        [(1, 3)],
        (2, 3),
        lambda x: x.expand(2, 3),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences_and_torch(case):
    grads, values, names, model = analytic(case)
    fd = numeric(case, values, names, model, eps=case.fd_eps)
    tg = torch_grads(case, values)
    for name, g in grads.items():
        assert g.shape == values[names.index(name)].shape
        np.testing.assert_allclose(
            g, fd[name], rtol=case.fd_rtol, atol=1e-6, err_msg=f"{name} vs FD"
        )
        np.testing.assert_allclose(g, tg[name], rtol=1e-6, atol=1e-9, err_msg=f"{name} vs torch")


def test_missing_rule_is_an_error():
    from transpiler.emit.train.autodiff import GradientError

    case = Case("Det", lambda b, n: b.op("Det", [n[0]]), [(3, 3)], (), torch.det)
    with pytest.raises(GradientError, match="no gradient rule for the ONNX op Det"):
        analytic(case)
