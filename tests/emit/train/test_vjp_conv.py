"""VJP rules of Conv, ConvTranspose and the pooling ops, over many attribute combinations:
each against central finite differences in float64 (onnx's reference evaluator), torch
autograd of the same math (float64), and the same gradient graph run by onnxruntime in
float32 (what training runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_conv_transpose import ConvTranspose as _ReferenceConvTranspose
from onnx.reference.ops.op_max_pool import MaxPool as _ReferenceMaxPool

from tests.emit.train.vjp_harness import build, random_inputs

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
F = torch.nn.functional


class ConvTranspose(_ReferenceConvTranspose):
    """onnx's reference ConvTranspose mishandles group > 1 (it writes one channel per
    group); this runs each group through its group=1 path, which is correct."""

    def _run(
        self,
        x,
        w,
        bias=None,
        auto_pad=None,
        dilations=None,
        group=None,
        kernel_shape=None,
        output_padding=None,
        output_shape=None,
        pads=None,
        strides=None,
    ):
        attrs = dict(
            auto_pad=auto_pad,
            dilations=dilations,
            group=1,
            kernel_shape=kernel_shape,
            output_padding=output_padding,
            output_shape=output_shape,
            pads=pads,
            strides=strides,
        )
        group = group or 1
        cg, mg = x.shape[1] // group, w.shape[1]
        parts = [
            super(ConvTranspose, self)._run(
                x[:, i * cg : (i + 1) * cg],
                w[i * cg : (i + 1) * cg],
                None if bias is None else bias[i * mg : (i + 1) * mg],
                **attrs,
            )[0]
            for i in range(group)
        ]
        return (np.concatenate(parts, axis=1),)


class MaxPool(_ReferenceMaxPool):
    """onnx's reference MaxPool with unit strides and dilations returns Indices without the
    (batch, channel) plane offset; its general path (used for other strides) counts them
    over the whole tensor as the spec and onnxruntime do."""

    def _run(
        self,
        x,
        auto_pad=None,
        ceil_mode=None,
        dilations=None,
        kernel_shape=None,
        pads=None,
        storage_order=None,
        strides=None,
    ):
        return self._max_pool(
            x, auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides
        )


def evaluator(model):
    return ReferenceEvaluator(model, new_ops=[ConvTranspose, MaxPool])


@dataclass
class Case:
    id: str
    forward: object  # (builder, input names) -> output name
    shapes: list
    torch: object
    out_shape: tuple = ()
    int_inputs: tuple = ()
    no_grad: tuple = ()
    int_high: int = 5
    sample: object = field(default=lambda rng, s: rng.normal(size=s))

    def __post_init__(self):
        zeros = [torch.zeros(s, dtype=torch.float64) for s in self.shapes]
        self.out_shape = tuple(self.torch(*zeros).shape)


# ---------------------------------------------------------------- torch references


def _torch_pads(begins, ends):
    """ONNX (begins, ends) per spatial axis -> F.pad's (last axis first) list."""
    out = []
    for b, e in reversed(list(zip(begins, ends))):
        out += [b, e]
    return out


def _nd(name, rank):
    return getattr(F, f"{name}{rank}d")


def t_conv(x, w, b=None, *, strides, dilations, begins, ends, group=1):
    r = x.dim() - 2
    x = F.pad(x, _torch_pads(begins, ends))
    return _nd("conv", r)(x, w, b, stride=strides, dilation=dilations, groups=group)


def t_conv_transpose(x, w, b=None, *, strides, dilations, begins, ends, extra, group=1):
    r = x.dim() - 2
    y = _nd("conv_transpose", r)(
        x, w, None, stride=strides, output_padding=extra, groups=group, dilation=dilations
    )
    crop = tuple(slice(b0, y.shape[2 + i] - e0) for i, (b0, e0) in enumerate(zip(begins, ends)))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y = y + b.reshape(1, -1, *[1] * r)
    return y


def t_max_pool(x, *, kernel, strides, begins, ends, dilations, ceil):
    r = x.dim() - 2
    pool = _nd("max_pool", r)
    if begins == ends:
        return pool(x, kernel, strides, begins, dilations, ceil_mode=ceil)
    assert not ceil
    x = F.pad(x, _torch_pads(begins, ends), value=-np.inf)
    return pool(x, kernel, strides, 0, dilations)


def t_avg_pool(x, *, kernel, strides, begins, ends, dilations, include_pad, ceil):
    """Window sums over window counts, both by a depthwise conv with ones (or torch's
    avg_pool for ceil_mode, whose extra windows this formula doesn't cover)."""
    r = x.dim() - 2
    if ceil:
        assert begins == ends and set(dilations) == {1}
        return _nd("avg_pool", r)(x, kernel, strides, begins, True, bool(include_pad))
    c = x.shape[1]
    ones = torch.ones((c, 1, *kernel), dtype=x.dtype)
    pads = _torch_pads(begins, ends)
    sums = _nd("conv", r)(F.pad(x, pads), ones, stride=strides, dilation=dilations, groups=c)
    mask = F.pad(torch.ones_like(x), pads, value=float(include_pad))
    counts = _nd("conv", r)(mask, ones, stride=strides, dilation=dilations, groups=c)
    return sums / counts


# ---------------------------------------------------------------- cases


def same_pads(lengths, kernel, strides, dilations=None, upper=True):
    dilations = dilations or [1] * len(kernel)
    begins, ends = [], []
    for n, k, s, d in zip(lengths, kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins, ends


def conv(
    id,
    x,
    w,
    bias=True,
    strides=None,
    dilations=None,
    pads=None,
    group=1,
    auto_pad=None,
):
    r = len(x) - 2
    strides = strides or [1] * r
    dilations = dilations or [1] * r
    pads = pads or [0] * (2 * r)
    begins, ends = pads[:r], pads[r:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = same_pads(x[2:], w[2:], strides, dilations, auto_pad == "SAME_UPPER")
    attrs = dict(strides=strides, dilations=dilations, group=group)
    attrs.update(auto_pad=auto_pad) if auto_pad else attrs.update(pads=pads)
    shapes = [x, w] + ([(w[0],)] if bias else [])
    return Case(
        f"Conv-{id}",
        lambda b, n: b.op("Conv", n, **attrs),
        shapes,
        lambda *t: t_conv(
            *t, strides=strides, dilations=dilations, begins=begins, ends=ends, group=group
        ),
    )


def conv_transpose(
    id, x, w, bias=True, strides=None, dilations=None, pads=None, extra=None, group=1
):
    r = len(x) - 2
    strides = strides or [1] * r
    dilations = dilations or [1] * r
    pads = pads or [0] * (2 * r)
    extra = extra or [0] * r
    attrs = dict(strides=strides, dilations=dilations, group=group, pads=pads)
    if any(extra):
        attrs["output_padding"] = extra
    shapes = [x, w] + ([(w[1] * group,)] if bias else [])
    return Case(
        f"ConvTranspose-{id}",
        lambda b, n: b.op("ConvTranspose", n, **attrs),
        shapes,
        lambda *t: t_conv_transpose(
            *t,
            strides=strides,
            dilations=dilations,
            begins=pads[:r],
            ends=pads[r:],
            extra=extra,
            group=group,
        ),
    )


def pool(
    op, id, x, kernel, strides=None, pads=None, dilations=None, ceil=0, include=0, auto_pad=None
):
    r = len(kernel)
    strides = strides or [1] * r
    dilations = dilations or [1] * r
    pads = pads or [0] * (2 * r)
    begins, ends = pads[:r], pads[r:]
    if auto_pad:
        begins, ends = same_pads(x[2:], kernel, strides, dilations, auto_pad == "SAME_UPPER")
    attrs = dict(kernel_shape=kernel, strides=strides, ceil_mode=ceil)
    attrs.update(auto_pad=auto_pad) if auto_pad else attrs.update(pads=pads)
    if dilations != [1] * r:
        attrs["dilations"] = dilations
    common = dict(kernel=kernel, strides=strides, begins=begins, ends=ends, dilations=dilations)
    if op == "MaxPool":
        fn = lambda t: t_max_pool(t, ceil=bool(ceil), **common)  # noqa: E731
    else:
        attrs["count_include_pad"] = include
        fn = lambda t: t_avg_pool(t, include_pad=include, ceil=bool(ceil), **common)  # noqa: E731
    return Case(f"{op}-{id}", lambda b, n: b.op(op, [n[0]], **attrs), [x], fn)


CASES = [
    conv("k3", (2, 3, 5, 5), (4, 3, 3, 3)),
    conv("stride2-odd-input", (2, 2, 6, 7), (3, 2, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1]),
    conv("stride2x3-asym-pads", (1, 2, 7, 8), (3, 2, 2, 3), False, [2, 3], pads=[0, 1, 2, 0]),
    conv("dilated", (1, 2, 7, 6), (2, 2, 3, 2), dilations=[2, 3], pads=[2, 1, 1, 2]),
    conv("k1-stride3", (2, 3, 7, 5), (2, 3, 1, 1), strides=[3, 2]),
    conv("k1", (2, 3, 4, 5), (4, 3, 1, 1)),
    conv("stride-and-dilation", (1, 2, 9, 8), (2, 2, 2, 2), strides=[2, 3], dilations=[2, 2]),
    conv("group2", (2, 4, 5, 5), (6, 2, 3, 3), strides=[2, 1], pads=[1, 0, 0, 1], group=2),
    conv("depthwise", (2, 3, 6, 5), (3, 1, 3, 3), pads=[1, 1, 1, 1], group=3),
    # stride 1 with groups, in 3-D, and with a pad beyond the kernel's span
    conv("group2-unit-stride", (2, 4, 5, 5), (6, 2, 3, 3), pads=[1, 0, 0, 1], group=2),
    conv("3d-unit-stride", (1, 2, 4, 4, 3), (2, 2, 2, 3, 2), pads=[1, 0, 1, 0, 1, 0]),
    conv("pad-beyond-span", (1, 2, 5, 4), (2, 2, 2, 2), pads=[2, 0, 0, 3]),
    conv(
        "depthwise-x2-stride2",
        (1, 3, 7, 6),
        (6, 1, 3, 2),
        strides=[2, 2],
        pads=[1, 0, 1, 1],
        group=3,
    ),
    conv("same-upper-stride2", (1, 2, 5, 6), (2, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER"),
    conv("same-lower", (1, 2, 5, 4), (2, 2, 2, 2), auto_pad="SAME_LOWER"),
    conv("valid-drops-tail", (1, 2, 7, 7), (2, 2, 2, 2), strides=[2, 3], auto_pad="VALID"),
    conv("1d-stride3", (2, 2, 10), (3, 2, 4), strides=[3], pads=[1, 2]),
    conv("1d-causal-dilated", (1, 2, 9), (2, 2, 3), dilations=[2], pads=[4, 0]),
    conv("1d-group", (1, 4, 8), (4, 2, 3), strides=[2], group=2),
    conv("3d", (1, 2, 4, 4, 3), (2, 2, 2, 3, 2), strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 0]),
    conv_transpose("k3", (2, 3, 4, 4), (3, 2, 3, 3)),
    conv_transpose(
        "stride2-pads-outpad",
        (1, 2, 3, 4),
        (2, 3, 3, 3),
        strides=[2, 2],
        pads=[1, 1, 0, 1],
        extra=[1, 0],
    ),
    conv_transpose("dilated", (1, 2, 4, 3), (2, 2, 2, 3), dilations=[2, 1], pads=[0, 1, 1, 0]),
    conv_transpose(
        "stride3-outpad2", (1, 2, 3, 3), (2, 1, 2, 3), False, strides=[3, 2], extra=[2, 1]
    ),
    conv_transpose(
        "group2", (1, 4, 3, 3), (4, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1], group=2
    ),
    conv_transpose("1d", (2, 3, 5), (3, 2, 4), strides=[3], pads=[1, 0], extra=[2]),
    conv_transpose(
        "3d", (1, 2, 2, 3, 2), (2, 2, 2, 2, 3), strides=[2, 1, 2], pads=[0, 1, 1, 1, 0, 0]
    ),
    pool("MaxPool", "2x2", (2, 3, 4, 4), [2, 2], [2, 2]),
    # windows that tile the input, with rows and columns left over, and uneven ones
    pool("MaxPool", "tiled-leftover", (2, 3, 5, 7), [2, 2], [2, 2]),
    pool("MaxPool", "tiled-3x2", (1, 2, 6, 4), [3, 2], [3, 2]),
    pool("MaxPool", "3x3-stride2-pad1", (2, 2, 5, 6), [3, 3], [2, 2], [1, 1, 1, 1]),
    pool("MaxPool", "overlapping", (1, 2, 5, 5), [3, 3], [1, 1]),
    pool("MaxPool", "asym-pads", (1, 2, 5, 5), [2, 2], [2, 2], [0, 1, 1, 0]),
    pool("MaxPool", "ceil", (1, 2, 5, 7), [2, 3], [2, 2], ceil=1),
    pool("MaxPool", "dilated", (1, 2, 6, 6), [2, 2], [1, 2], dilations=[2, 2]),
    pool("MaxPool", "same-upper", (1, 2, 5, 5), [2, 2], [2, 2], auto_pad="SAME_UPPER"),
    pool("MaxPool", "1d", (2, 3, 9), [3], [2]),
    pool("MaxPool", "3d", (1, 2, 4, 4, 4), [2, 2, 2], [2, 2, 2]),
    pool("AveragePool", "2x2", (2, 3, 4, 4), [2, 2], [2, 2]),
    pool("AveragePool", "odd-input", (1, 2, 7, 5), [2, 2], [2, 2]),
    pool("AveragePool", "pad1-exclude", (1, 2, 5, 6), [3, 3], [2, 2], [1, 1, 1, 1]),
    pool("AveragePool", "pad1-include", (1, 2, 5, 6), [3, 3], [2, 2], [1, 1, 1, 1], include=1),
    pool("AveragePool", "asym-exclude", (1, 2, 5, 5), [2, 3], [2, 1], [1, 0, 0, 2]),
    pool("AveragePool", "asym-include", (1, 2, 5, 5), [2, 3], [2, 1], [1, 0, 0, 2], include=1),
    pool("AveragePool", "ceil-exclude", (1, 2, 5, 6), [3, 2], [2, 2], [1, 0, 1, 0], ceil=1),
    pool(
        "AveragePool", "ceil-include", (1, 2, 6, 5), [3, 3], [2, 2], [1, 1, 1, 1], ceil=1, include=1
    ),
    pool("AveragePool", "dilated", (1, 2, 6, 7), [2, 2], [1, 2], [1, 0, 0, 1], dilations=[2, 2]),
    pool("AveragePool", "same-upper", (1, 2, 5, 6), [3, 2], [2, 2], auto_pad="SAME_UPPER"),
    pool("AveragePool", "1d", (2, 2, 8), [3], [2], [1, 1]),
    pool("AveragePool", "3d", (1, 2, 4, 3, 4), [2, 2, 2], [2, 1, 2]),
    Case(
        "GlobalAveragePool",
        lambda b, n: b.op("GlobalAveragePool", [n[0]]),
        [(2, 3, 4, 5)],
        lambda x: x.mean((2, 3), keepdim=True),
    ),
    Case(
        "GlobalAveragePool-1d",
        lambda b, n: b.op("GlobalAveragePool", [n[0]]),
        [(2, 3, 4)],
        lambda x: x.mean(2, keepdim=True),
    ),
    Case(
        "GlobalMaxPool",
        lambda b, n: b.op("GlobalMaxPool", [n[0]]),
        [(2, 3, 4, 5)],
        lambda x: x.amax((2, 3), keepdim=True),
    ),
    Case(
        "MaxPool-Indices-output",
        lambda b, n: b.op("MaxPool", [n[0]], outputs=2, kernel_shape=[2, 2], strides=[1, 2])[0],
        [(1, 2, 4, 4)],
        lambda x: F.max_pool2d(x, 2, (1, 2)),
    ),
    Case(
        # dY of the Conv is a sum of two gradients (no static shape recorded for it)
        "Conv-output-used-twice",
        lambda b, n: (lambda c: b.op("Add", [c, b.op("Tanh", [c])]))(
            b.op("Conv", n, strides=[2, 2], group=2)
        ),
        [(2, 4, 5, 5), (2, 2, 2, 2)],
        lambda x, w: (lambda c: c + torch.tanh(c))(F.conv2d(x, w, stride=2, groups=2)),
    ),
    Case(
        "ConvTranspose-output-used-twice",
        lambda b, n: (lambda c: b.op("Mul", [c, c]))(b.op("ConvTranspose", n, strides=[2])),
        [(2, 2, 3), (2, 3, 2), (3,)],
        lambda x, w, c: F.conv_transpose1d(x, w, c, stride=2) ** 2,
    ),
    Case(
        "Conv-Relu-MaxPool-chain",
        lambda b, n: b.op(
            "MaxPool",
            [b.op("Relu", [b.op("Conv", n, pads=[1, 1, 1, 1])])],
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        [(2, 2, 5, 5), (3, 2, 3, 3), (3,)],
        lambda x, w, c: F.max_pool2d(torch.relu(F.conv2d(x, w, c, padding=1)), 2),
    ),
]


# ---------------------------------------------------------------- checks


def forward_only(model, loss):
    """The nodes the loss needs (finite differences then skip the backward pass)."""
    needed, nodes = {loss}, []
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(node.input)
    graph = helper.make_graph(
        list(reversed(nodes)),
        "forward",
        list(model.graph.input),
        [model.graph.output[0]],
        list(model.graph.initializer),
    )
    out = helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    return out


def finite_differences(case, values, names, model, loss, eps=1e-6):
    ev = evaluator(forward_only(model, loss))

    def f(vals):
        return float(ev.run(None, dict(zip(names, vals)))[0])

    out = {}
    for i, n in enumerate(names):
        g = np.zeros_like(values[i])
        flat = g.reshape(-1)
        for j in range(flat.size):
            plus = [v.copy() for v in values]
            minus = [v.copy() for v in values]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            flat[j] = (f(plus) - f(minus)) / (2 * eps)
        out[n] = g
    return out


def torch_grads(case, values):
    tensors = [torch.tensor(v, requires_grad=True) for v in values]
    y = case.torch(*tensors)
    w = torch.tensor(np.random.default_rng(1).normal(size=case.out_shape))
    (y * w).sum().backward()
    return [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences_torch_and_onnxruntime(case):
    model, names, wrt, grad_names, loss = build(case)
    values = random_inputs(case)
    feeds = dict(zip(names, values))
    analytic = evaluator(model).run(None, feeds)[1:]
    fd = finite_differences(case, values, names, model, loss)
    expected = torch_grads(case, values)
    for name, value, g, t in zip(names, values, analytic, expected):
        assert g.shape == value.shape, name
        np.testing.assert_allclose(g, fd[name], rtol=1e-5, atol=1e-6, err_msg=f"{name} vs FD")
        np.testing.assert_allclose(g, t, rtol=1e-7, atol=1e-9, err_msg=f"{name} vs torch")

    # what training runs: the same gradient graph in float32 through onnxruntime
    model32 = build(case, np.float32)[0]
    session = ort.InferenceSession(model32.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: v.astype(np.float32) for n, v in feeds.items()})[1:]
    for name, g, t in zip(names, got, expected):
        scale = max(1.0, float(np.abs(t).max()))
        np.testing.assert_allclose(g, t, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{name} ORT")


@pytest.mark.parametrize(
    ("op", "attrs", "out", "message"),
    [
        ("ConvTranspose", {"output_shape": [5, 5]}, (1, 2, 5, 5), "output_shape"),
        ("ConvTranspose", {"auto_pad": "SAME_UPPER"}, (1, 2, 3, 3), "auto_pad"),
        ("MaxPool", {"kernel_shape": [2, 2], "storage_order": 1}, (1, 2, 2, 2), "storage_order"),
    ],
)
def test_unsupported_attribute_is_named(op, attrs, out, message):
    from transpiler.emit.train.autodiff import GradientError

    shapes = [(1, 2, 3, 3), (2, 2, 3, 3)][: 2 if op == "ConvTranspose" else 1]
    zeros = lambda *t: torch.zeros(out, dtype=torch.float64)  # noqa: E731
    case = Case(f"{op}-unsupported", lambda b, n: b.op(op, n, **attrs), shapes, zeros)
    with pytest.raises(GradientError, match=message):
        build(case)


@pytest.mark.parametrize(
    "case",
    [
        pool("MaxPool", "ties-tiled", (1, 2, 4, 6), [2, 3], [2, 3]),
        pool("MaxPool", "ties-overlapping", (1, 2, 4, 5), [2, 2], [1, 1]),
    ],
    ids=lambda c: c.id,
)
def test_max_pool_ties_go_to_the_first_maximum(case):
    """Equal values in a window (an upsampled or clipped input): the whole gradient goes
    to the first one in row-major order, as torch does (finite differences are undefined
    there, so only torch is the oracle)."""
    model, names, *_ = build(case)
    x = np.random.default_rng(0).integers(0, 3, size=case.shapes[0]).astype(np.float64)
    (got,) = evaluator(model).run(None, {names[0]: x})[1:]
    (expected,) = torch_grads(case, [x])
    np.testing.assert_array_equal(got, expected)
    model32 = build(case, np.float32)[0]
    session = ort.InferenceSession(model32.SerializeToString(), providers=["CPUExecutionProvider"])
    (got32,) = session.run(None, {names[0]: x.astype(np.float32)})[1:]
    np.testing.assert_allclose(got32, expected, rtol=1e-6)
