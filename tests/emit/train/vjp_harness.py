"""Checks VJP rules: the gradient graph ktrans builds for one op (or a few) against central
finite differences in float64 and against torch autograd on the same inputs."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from transpiler.emit.onnx.builder import OpBuilder
from transpiler.emit.train.autodiff import gradients, static_shapes


def build(case, dtype=np.float64):
    """case.forward(b, names) -> output name. Returns (model, input names, grad names)."""
    b = OpBuilder()
    names = [f"x{i}" for i in range(len(case.shapes))]
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inputs = [
        helper.make_tensor_value_info(
            n, TensorProto.INT64 if i in case.int_inputs else onnx_type, list(s)
        )
        for i, (n, s) in enumerate(zip(names, case.shapes))
    ]
    y = case.forward(b, names)
    weights = np.random.default_rng(1).normal(size=case.out_shape).astype(dtype)
    w = b.const(weights, dtype, "probe")
    loss = b.op("ReduceSum", [b.op("Mul", [y, w])], keepdims=0)
    loss_info = helper.make_tensor_value_info(loss, onnx_type, [])
    forward = list(b.nodes)
    shapes, dtypes = static_shapes(b, inputs, [loss_info])
    wrt = [n for i, n in enumerate(names) if i not in case.int_inputs and i not in case.no_grad]
    grads = gradients(b, forward, shapes, dtypes, loss, wrt, float_dtype=dtype)
    outputs = [loss_info] + [helper.make_tensor_value_info(grads[n], onnx_type, None) for n in wrt]
    graph = helper.make_graph(b.nodes, "vjp", inputs, outputs, b.tensor_protos())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model, names, wrt, [grads[n] for n in wrt], loss


def random_inputs(case, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(case.shapes):
        if i in case.int_inputs:
            out.append(rng.integers(0, case.int_high, size=s).astype(np.int64))
        else:
            out.append(case.sample(rng, s).astype(dtype))
    return out


def analytic(case):
    model, names, wrt, grad_names, loss = build(case)
    values = random_inputs(case)
    ev = ReferenceEvaluator(model)
    results = ev.run(None, dict(zip(names, values)))
    return dict(zip(wrt, results[1:])), values, names, model


def numeric(case, values, names, model, eps=1e-6):
    ev = ReferenceEvaluator(model)

    def f(vals):
        return float(ev.run(None, dict(zip(names, vals)))[0])

    out = {}
    for i, n in enumerate(names):
        if i in case.int_inputs or i in case.no_grad:
            continue
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
    import torch

    tensors = []
    for i, v in enumerate(values):
        t = torch.tensor(v)
        if i not in case.int_inputs and i not in case.no_grad:
            t.requires_grad_(True)
        tensors.append(t)
    y = case.torch(*tensors)
    w = torch.tensor(np.random.default_rng(1).normal(size=case.out_shape))
    (y * w).sum().backward()
    return {
        f"x{i}": t.grad.numpy()
        for i, t in enumerate(tensors)
        if i not in case.int_inputs and i not in case.no_grad
    }
