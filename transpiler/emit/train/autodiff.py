"""Reverse-mode differentiation of an ONNX graph, op by op (as onnxruntime-training's
gradient builder does): walk the forward nodes backwards, apply each op's VJP rule,
accumulate gradients that meet, and prune everything that doesn't reach the loss."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from transpiler.emit.onnx.builder import OpBuilder
from transpiler.emit.train.grad import NO_GRADIENT, load_rules
from transpiler.emit.train.grad.context import GradContext


class GradientError(Exception):
    """A forward op has no VJP rule; `node` is the ONNX node, for naming its layer."""

    def __init__(self, message: str, node) -> None:
        super().__init__(message)
        self.node = node


def static_shapes(b: OpBuilder, inputs: list, outputs: list) -> tuple[dict, dict]:
    """Runs onnx shape inference over the builder's nodes: value name -> (shape, dtype)."""
    graph = helper.make_graph(b.nodes, "shapes", inputs, outputs, b.tensor_protos())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes, dtypes = {}, {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = vi.type.tensor_type
        dims = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        shapes[vi.name] = tuple(dims)
        dtypes[vi.name] = t.elem_type
    for name, array in b.initializers.items():
        shapes[name] = tuple(array.shape)
        dtypes[name] = helper.np_dtype_to_tensor_dtype(array.dtype)
    return shapes, dtypes


def gradients(
    b: OpBuilder,
    forward_nodes: list,
    shapes: dict,
    dtypes: dict,
    loss: str,
    wrt: list[str],
    float_dtype=np.float32,
    origins: dict[str, str] | None = None,
) -> dict[str, str]:
    """Adds the backward pass to `b`; returns {parameter: gradient value name}. `origins`,
    if given, is filled with {backward node name: the forward node name it differentiates}
    (so a problem in the backward pass can be traced to a layer)."""
    rules = load_rules()
    g = GradContext(b, shapes, dtypes, float_dtype)
    depends = set(wrt)
    for node in forward_nodes:
        if any(i in depends for i in node.input):
            depends.update(o for o in node.output if o)
    needed = {loss}
    for node in reversed(forward_nodes):
        if any(o in needed for o in node.output):
            needed.update(i for i in node.input if i in depends)
    pending: dict[str, list[str]] = {loss: [g.const(1.0, name="loss_grad_seed")]}
    shapes[pending[loss][0]] = ()

    def total(name: str) -> str | None:
        parts = pending.get(name)
        if not parts:
            return None
        if len(parts) > 1:
            parts[:] = [b.op("Sum", parts)]
            shapes[parts[0]] = shapes.get(name)
        return parts[0]

    b.scope = "grad"
    for node in reversed(forward_nodes):
        if not any(i in needed and i in depends for i in node.input):
            continue
        out_grads = [total(o) for o in node.output]
        if all(d is None for d in out_grads):
            continue
        if node.op_type in NO_GRADIENT:
            continue
        rule = rules.get(node.op_type)
        if rule is None:
            raise GradientError(f"no gradient rule for the ONNX op {node.op_type}", node)
        start = len(b.nodes)
        try:
            in_grads = rule(g, node, out_grads)
        except NotImplementedError as e:
            raise GradientError(f"{node.op_type}: {e}", node) from None
        if origins is not None:
            origins.update((n.name, node.name) for n in b.nodes[start:])
        for name, d in zip(node.input, in_grads):
            if d is not None and name in needed and name in depends:
                shapes.setdefault(d, shapes.get(name))
                pending.setdefault(name, []).append(d)
    b.scope = ""
    out = {}
    for w in wrt:
        d = total(w)
        if d is None:  # the loss does not depend on it
            d = b.op("Mul", [w, g.const(0.0)], name=f"{w}_no_grad")
        out[w] = d
    return out
