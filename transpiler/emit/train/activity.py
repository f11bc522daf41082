"""Activity regularization as Keras 3 applies it (Layer.__call__ in
keras/src/layers/layer.py): every output tensor of a layer call whose layer has an
`activity_regularizer` adds `regularizer(output) / batch size` (divide_no_nan) to the
loss, in training and evaluation alike, on the output the call returned (after the
layer's activation; in the mode the model runs in).

Which calls count is Keras's: each node of the graph with such a layer, for every output
(a recurrent layer's states too, with return_state). Wrappers as in Keras:
Bidirectional calls its forward and backward layers, so each adds its own penalty on its
own outputs (before the merge); TimeDistributed calls its layer's `call`, which skips
activity regularization, so a layer wrapped by TimeDistributed adds none. Keras 3's
SimpleRNN accepts `activity_regularizer` but never hands it to its base layer
(keras/src/layers/rnn/simple_rnn.py, Keras 3.15), so it adds none either (LSTM and GRU
do).

The penalty is a sum of |x| or x^2 over the whole tensor, which does not depend on the
axis order: it reads each output as stored (no Transpose back to Keras's order), and only
the batch size is taken from the stored axis that holds the logical batch axis.
"""

from __future__ import annotations

from transpiler.emit.onnx.tensors import LTensor
from transpiler.emit.train.losses import divide_no_nan, penalty_terms
from transpiler.errors import KdlError, KdlErrors
from transpiler.layers.recurrent_wrappers import Bidirectional, TimeDistributed
from transpiler.layers.regularizers import activity_regularizer

__all__ = ["activity_penalties", "activity_regularizer"]


def activity_penalties(b, graph, values: dict) -> list[str]:
    """The scalar penalty of every regularized layer output, in graph order. `values`
    maps id(graph value) to its lowered LTensor, as the model emitters fill it."""
    produced = {o: node for node in b.nodes for o in node.output}
    terms: list[str] = []
    for node in graph.nodes:
        outs = [values[id(v)] for v in node.outputs]
        scope = node.outputs[0].name.split(":")[0]
        for reg, names in _regularized(node, outs, produced):
            b.scope = f"{scope}/activity_regularizer"
            batch = _batch_size(b, outs[0])
            for name in names:  # as stored: a sum over all entries ignores the axis order
                parts = penalty_terms(b, name, reg)
                if parts:
                    total = parts[0] if len(parts) == 1 else b.op("Add", parts)
                    terms.append(divide_no_nan(b, total, batch))
    b.scope = ""
    return terms


def _regularized(node, outs: list[LTensor], produced: dict):
    """(regularizer, value names) for each regularized layer call of this node."""
    layer = node.layer
    if isinstance(layer, Bidirectional):
        yield from _bidirectional(node, outs, produced)
        return
    if isinstance(layer, TimeDistributed):
        _check_time_distributed(node)
        return
    reg = activity_regularizer(layer)
    if reg is not None:
        yield reg, [t.name for t in outs]


def _bidirectional(node, outs: list[LTensor], produced: dict):
    layer = node.layer
    fwd, bwd = layer.forward_layer, layer.backward_layer
    regs = (activity_regularizer(fwd), activity_regularizer(bwd))
    if regs == (None, None):
        return
    names = [t.name for t in outs]
    if layer.merge_mode is None:  # [y, y_rev, forward states..., backward states...]
        y, y_rev, states = names[0], names[1], names[2:]
    else:  # [merged, forward states..., backward states...]
        y, y_rev = _merge_operands(node, names[0], produced)
        states = names[1:]
    n_fwd = fwd.num_outputs - 1
    if regs[0] is not None:
        yield regs[0], [y, *states[:n_fwd]]
    if regs[1] is not None:
        yield regs[1], [y_rev, *states[n_fwd:]]


def _merge_operands(node, merged: str, produced: dict) -> tuple[str, str]:
    """The forward and backward outputs that Bidirectional's lowering merged into
    `merged`: Concat/Add/Mul(y, y_rev), or Div(Add(y, y_rev), 2) for ave (possibly each
    transposed to Keras's order first, which leaves the penalty unchanged)."""
    expected = {"concat": ("Concat",), "sum": ("Add",), "mul": ("Mul",), "ave": ("Div", "Add")}
    path = expected[node.layer.merge_mode]
    value, operands = merged, []
    for op_type in path:
        producer = produced.get(value)
        if producer is None or producer.op_type != op_type:
            raise _error(
                node,
                "cannot find the forward and backward outputs of Bidirectional "
                f"(merge_mode={node.layer.merge_mode}) to apply their activity_regularizer",
            )
        operands = list(producer.input)
        value = operands[0]
    if len(operands) != 2:
        raise _error(node, "unexpected Bidirectional merge while applying activity_regularizer")
    return operands[0], operands[1]


def _check_time_distributed(node) -> None:
    """Keras's TimeDistributed runs its layer's `call` (no activity regularizer of that
    layer), but a Bidirectional inside still calls its own layers, once per time step;
    that case is not emitted."""
    inner = node.layer.layer
    while isinstance(inner, TimeDistributed):
        inner = inner.layer
    if isinstance(inner, Bidirectional) and any(
        activity_regularizer(lay) is not None for lay in (inner.forward_layer, inner.backward_layer)
    ):
        raise _error(
            node,
            "activity_regularizer on a layer of a Bidirectional inside TimeDistributed is "
            "not applied in training yet",
        )


def _batch_size(b, t: LTensor) -> str:
    """The batch size as a float scalar (Keras: ops.shape(output)[0])."""
    dim = t.type.shape[0]
    if isinstance(dim, int):
        return b.const(float(dim))
    axis = t.physical_axis(0)
    shape = b.op("Shape", [t.name], start=axis, end=axis + 1)
    return b.op("Cast", [b.op("Squeeze", [shape, b.ints([0], "axes")])], to=1)


def _error(node, message: str) -> KdlErrors:
    return KdlErrors([KdlError(node.span, f"{node.layer.name}: {message}")])
