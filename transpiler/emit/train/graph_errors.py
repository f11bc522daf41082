"""Failures while building a training or evaluation graph, reported at the .kdl layer.

The emitters lower each graph node under a builder scope (`b.scope`, the layer call's
value name), so every forward ONNX node they make is named `<scope>/<OpType>`; the
backward pass records which forward node each of its nodes differentiates. `Scopes`
remembers which graph node each scope lowered; a missing or partial VJP rule
(autodiff.GradientError) and a graph that onnx's checker rejects are then reported as a
KdlError at that layer's call, naming the layer first and the ONNX op second, never only
the op.
"""

from __future__ import annotations

import re

import onnx

from transpiler.errors import KdlError, KdlErrors

REPORT = "this is a gap in ktrans, not in your model: please report it with the .kdl file"


class Scopes:
    """Builder scope -> the graph node lowered under it."""

    def __init__(self, graph) -> None:
        self.graph = graph
        self._nodes: dict[str, object] = {}
        #: backward node name -> the forward node it differentiates (autodiff fills it)
        self.origins: dict[str, str] = {}

    def enter(self, scope: str, node) -> None:
        self._nodes[scope] = node

    def node_of(self, onnx_name: str):
        """The graph node whose lowering made the ONNX node or value `onnx_name` (the
        longest scope it starts with), or None (the loss, metrics, optimizer)."""
        onnx_name = self.origins.get(onnx_name, onnx_name)
        best = None
        for scope in self._nodes:
            if onnx_name.startswith(f"{scope}/") and (best is None or len(scope) > len(best)):
                best = scope
        return self._nodes.get(best) if best is not None else None

    def error(self, onnx_name: str, message: str, fallback_span=None) -> KdlErrors:
        """`message` about the layer behind `onnx_name`, at its call site."""
        node = self.node_of(onnx_name) if onnx_name else None
        if node is None:
            return KdlErrors([KdlError(fallback_span, f"{self.graph.name}: {message}", REPORT)])
        layer = node.layer
        what = f"{layer.keras_class()} ('{layer.name}')"
        return KdlErrors([KdlError(node.span, f"{what} cannot be trained: {message}", REPORT)])


def gradient_error(scopes: Scopes, error, fallback_span=None) -> KdlErrors:
    """An autodiff.GradientError as an error at the layer whose op has no gradient."""
    node = error.node
    op = f"the ONNX op {node.op_type} ('{node.name}')"
    message = str(error)
    if message.startswith("no gradient rule"):
        text = f"ktrans has no gradient rule for {op} that it lowers to"
    else:
        text = f"the gradient rule of {op} does not support it: {message.split(': ', 1)[-1]}"
    return scopes.error(node.name or (node.output[0] if node.output else ""), text, fallback_span)


_NODE_NAME = re.compile(r"node name: ([^)\s]+)\)")


def check_onnx(proto: onnx.ModelProto, what: str, scopes: Scopes, fallback_span=None) -> None:
    """onnx's full checker (types and shapes too) on a graph ktrans is about to hand out;
    a rejection is an error at the layer whose node it names."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        detail = " ".join(str(e).split())
        found = _NODE_NAME.search(detail)
        message = f"the {what} graph ktrans built is rejected by onnx's checker: {detail}"
        raise scopes.error(found.group(1) if found else "", message, fallback_span) from None
