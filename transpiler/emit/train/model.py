"""Graph + TrainConfig -> one ONNX model per training step.

Inputs: the batch (model inputs and one `target:<output>` per trained output), `ktrans:lr`
(float scalar), `ktrans:step` (int64 scalar: steps done so far), every parameter and buffer
(named `<layer>/<weight>`, ONNX layout) and every optimizer slot (`slot:<param>:<name>`).
Outputs: `ktrans:loss` (the total, as Keras reports it), `loss:<output>` for multi-output
models,
`metric:<output>:<name>` (this batch's statistic), and `new:<name>` for every parameter,
buffer and slot. The training loop feeds each step's `new:` values back as inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from transpiler.emit.onnx.builder import OpBuilder, make_model
from transpiler.emit.onnx.context import LowerContext
from transpiler.emit.onnx.model import initial_weights, lower_nodes, value_info
from transpiler.emit.train.activity import activity_penalties
from transpiler.emit.train.autodiff import GradientError, gradients, static_shapes
from transpiler.emit.train.graph_errors import Scopes, check_onnx, gradient_error
from transpiler.emit.train.losses import target_type, total_loss
from transpiler.emit.train.metrics import batch_metrics, metric_shapes
from transpiler.emit.train.names import LOSS_OF, LOSS_OUTPUT, LR_INPUT, NEW, STEP_INPUT, TARGET
from transpiler.emit.train.optimizers import apply_optimizer

__all__ = ["LOSS_OUTPUT", "LR_INPUT", "STEP_INPUT", "TrainingModel", "build_training_model"]


@dataclass
class TrainingModel:
    proto: onnx.ModelProto
    data_inputs: list[str]  # model inputs, then targets
    params: dict[str, np.ndarray]  # trainable, ONNX layout, initial values
    buffers: dict[str, np.ndarray]  # non-trainable weights (moving statistics)
    slots: dict[str, np.ndarray]  # optimizer state, initial values
    metrics: list[str]  # output names of metric values
    losses: list[str]  # LOSS_OUTPUT ("ktrans:loss") first
    state_names: list[str] = field(default_factory=list)  # params + buffers + slots, in order


def build_training_model(
    graph, config, *, seed: int = 0, weights: dict | None = None
) -> TrainingModel:
    weights = weights if weights is not None else initial_weights(graph, seed)
    b = OpBuilder()
    ctx = LowerContext(b, weights, training=True)
    ctx.step_input = b.unique(STEP_INPUT)
    b.unique(LR_INPUT)
    scopes = Scopes(graph)
    values = lower_nodes(graph, ctx, "for training", scopes.enter)
    predictions = {name: ctx.logical(values[id(v)]).name for name, v in graph.outputs.items()}
    activity = activity_penalties(b, graph, values)  # on the training-mode outputs
    targets = {}
    for name in config.loss:
        targets[name] = TARGET + name
        b.unique(targets[name])
    trainable = [n for n, (_, t, _) in ctx.params.items() if t]
    b.scope = "loss"
    loss, per_output = total_loss(b, config, graph, predictions, targets, ctx.params, activity)
    b.scope = "metrics"
    metric_values = batch_metrics(b, config, graph, predictions, targets)
    b.scope = ""
    forward_nodes = list(b.nodes)

    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    for name, target in targets.items():
        t = graph.outputs[name].type
        inputs.append(value_info(target, target_type(config.loss[name], t)))
    inputs.append(helper.make_tensor_value_info(STEP_INPUT, TensorProto.INT64, []))
    inputs.append(helper.make_tensor_value_info(LR_INPUT, TensorProto.FLOAT, []))
    for name, (array, _, _) in ctx.params.items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    loss_info = helper.make_tensor_value_info(LOSS_OUTPUT, TensorProto.FLOAT, [])
    b.nodes.append(helper.make_node("Identity", [loss], [LOSS_OUTPUT], "loss/total"))
    forward_nodes.append(b.nodes[-1])
    shapes, dtypes = static_shapes(b, inputs, [loss_info])
    try:
        grads = gradients(
            b, forward_nodes, shapes, dtypes, LOSS_OUTPUT, trainable, origins=scopes.origins
        )
    except GradientError as e:
        raise gradient_error(scopes, e, config.span) from None
    b.scope = "optimizer"
    params = {n: ctx.params[n][0] for n in trainable}
    new_params, slots, new_slots = apply_optimizer(b, config, params, grads)
    b.scope = ""

    outputs = [loss_info]
    if len(per_output) > 1:
        for name, value in per_output.items():
            b.nodes.append(helper.make_node("Identity", [value], [LOSS_OF + name]))
            outputs.append(helper.make_tensor_value_info(LOSS_OF + name, TensorProto.FLOAT, []))
    declared = metric_shapes(config, graph)
    for name, value in metric_values.items():
        b.nodes.append(helper.make_node("Identity", [value], [name]))
        shape = list(declared[name])
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    buffers = {n: a for n, (a, t, _) in ctx.params.items() if not t}
    updates = {**new_params, **{n: ctx.buffer_updates.get(n, n) for n in buffers}, **new_slots}
    initial = {**params, **buffers, **slots}
    produced = {o: node for node in b.nodes for o in node.output}
    graph_inputs = {i.name for i in inputs}
    renamed: set[str] = set()
    for name, value in updates.items():
        _output_as(b, produced, graph_inputs, renamed, value, NEW + name)
        shape = list(initial[name].shape)
        outputs.append(helper.make_tensor_value_info(NEW + name, TensorProto.FLOAT, shape))
    for name, array in slots.items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))

    g = helper.make_graph(b.nodes, f"{graph.name}_train", inputs, outputs, b.tensor_protos())
    proto = make_model(g, {"ktrans.model": graph.name, "ktrans.train": config.name})
    check_onnx(proto, "training", scopes, config.span)
    return TrainingModel(
        proto=proto,
        data_inputs=[v.name for v in graph.inputs] + list(targets.values()),
        params=params,
        buffers=buffers,
        slots=slots,
        metrics=list(metric_values),
        losses=[LOSS_OUTPUT] + ([LOSS_OF + n for n in per_output] if len(per_output) > 1 else []),
        state_names=[*params, *buffers, *slots],
    )


def _output_as(b, produced, graph_inputs, renamed, value: str, output: str) -> None:
    """Makes `value` available as the graph output `output`: by renaming the node output
    that computes it (an Identity would copy a whole parameter every step), or with an
    Identity where the value is a graph input or already an output."""
    node = produced.get(value)
    if node is None or value in graph_inputs or value in renamed:
        b.nodes.append(helper.make_node("Identity", [value], [output]))
        return
    renamed.add(value)
    for n in b.nodes:
        for i, name in enumerate(n.input):
            if name == value:
                n.input[i] = output
    for i, name in enumerate(node.output):
        if name == value:
            node.output[i] = output
