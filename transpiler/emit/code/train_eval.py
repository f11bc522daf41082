"""The evaluation model of a training bundle: the forward pass in inference mode (Dropout
off, moving statistics used) with the train block's loss and metrics and no update, for
validation and test data."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from transpiler.emit.onnx.builder import OpBuilder, make_model
from transpiler.emit.onnx.context import LowerContext
from transpiler.emit.onnx.model import value_info
from transpiler.emit.onnx.tensors import LTensor
from transpiler.emit.train.graph_errors import Scopes, check_onnx
from transpiler.emit.train.names import LOSS_OF, LOSS_OUTPUT, TARGET
from transpiler.errors import KdlError, KdlErrors
from transpiler.layers.masking import lower_node


class _EvalContext(LowerContext):
    """Inference-mode lowering that also records each weight's spec (for regularization
    penalties in the loss), as training lowering does in `params`."""

    def weight(self, name, transform=None, key="", layer=None):
        full = super().weight(name, transform, key, layer)
        if full not in self.params:
            layer = layer or self.layer
            spec = next(w for w in layer.weights if w.name == name)
            trainable = bool(layer.trainable and spec.trainable)
            self.params[full] = (self.b.initializers[full], trainable, spec)
        return full


def build_eval_model(graph, config, weights) -> onnx.ModelProto:
    """The forward pass in inference mode with the train block's loss and metrics, and no
    update: inputs are the model inputs, `target:<output>` (typed as the training model
    types it: `target_type`) and every weight (`<layer>/<weight>`, as the training model
    names them); outputs `loss`, `loss:<output>` (several losses) and the metric statistics
    `metric:<output>:<name>[:<stat>]` shaped as `metric_shapes` says, as the training
    model's."""
    from transpiler.emit.train.activity import activity_penalties
    from transpiler.emit.train.losses import target_type, total_loss
    from transpiler.emit.train.metrics import batch_metrics, metric_shapes

    b = OpBuilder()
    ctx = _EvalContext(b, weights)
    values = {}
    for v in graph.inputs:
        b.unique(v.name)
        values[id(v)] = LTensor(v.name, v.type)
    scopes = Scopes(graph)
    for node in graph.nodes:
        ctx.layer = node.layer
        b.scope = node.outputs[0].name.split(":")[0]
        scopes.enter(b.scope, node)
        try:
            outs = lower_node(ctx, node, values)
        except NotImplementedError as e:
            what = f"{node.layer.keras_class()} ('{node.layer.name}')"
            message = f"{what} cannot be lowered for evaluation yet: {e}"
            raise KdlErrors([KdlError(node.span, message)]) from None
        for v, t in zip(node.outputs, outs):
            values[id(v)] = t
    b.scope = ""
    predictions = {name: ctx.logical(values[id(v)]).name for name, v in graph.outputs.items()}
    activity = activity_penalties(b, graph, values)  # as Keras's evaluate: inference mode
    targets = {name: b.unique(TARGET + name) for name in config.loss}
    b.scope = "loss"
    loss, per_output = total_loss(b, config, graph, predictions, targets, ctx.params, activity)
    b.scope = "metrics"
    metric_values = batch_metrics(b, config, graph, predictions, targets)
    b.scope = ""

    named = {LOSS_OUTPUT: loss}
    if len(per_output) > 1:
        named.update({LOSS_OF + n: v for n, v in per_output.items()})
    named.update(metric_values)
    shapes = metric_shapes(config, graph)
    outputs = []
    for name, value in named.items():
        b.nodes.append(helper.make_node("Identity", [value], [name], f"{name}/output"))
        shape = list(shapes.get(name, ()))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    for name, target in targets.items():
        inputs.append(value_info(target, target_type(config.loss[name], graph.outputs[name].type)))
    state = [n for n in ctx.params]
    for name in state:
        shape = list(b.initializers[name].shape)
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    constants = [
        onnx.numpy_helper.from_array(a, n) for n, a in b.initializers.items() if n not in state
    ]
    g = helper.make_graph(b.nodes, f"{graph.name}_eval", inputs, outputs, constants)
    proto = make_model(g, {"ktrans.model": graph.name, "ktrans.train": config.name})
    check_onnx(proto, "evaluation", scopes, config.span)
    return proto
