"""What a layer's `lower(ctx, inputs)` method works with: op building, its weights in
ONNX layout, layout conversions and activations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from transpiler.emit.onnx.builder import OpBuilder
from transpiler.emit.onnx.pending import PendingArray, resolve
from transpiler.emit.onnx.tensors import LTensor, channels_first_perm, inverse
from transpiler.emit.train.names import STEP_INPUT
from transpiler.graph.types import TensorType
from transpiler.layers.base import NO_CALL_ARGS

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


class LowerContext:
    """`training=True` lowers for a training step: weights become graph inputs (recorded
    in `params`), Dropout and noise are active, BatchNormalization uses batch statistics
    and reports its new moving averages through `update_buffer`."""

    def __init__(
        self,
        builder: OpBuilder,
        weights: dict[str, dict[str, np.ndarray]],
        training: bool = False,
    ) -> None:
        self.b = builder
        self.weights = weights
        self.training = training
        self.layer = None  # the layer being lowered (set by the model emitter)
        #: the keyword tensors (LTensors) and flags of the call being lowered (lower_node)
        self.call = NO_CALL_ARGS
        #: training: graph-input name -> (initial value in ONNX layout, trainable, Weight)
        self.params: dict[str, tuple[np.ndarray, bool, object]] = {}
        #: training: non-trainable input name -> the value name that replaces it after a step
        self.buffer_updates: dict[str, str] = {}
        #: training: value names of the step counter and the per-layer random seeds
        self.step_input = STEP_INPUT
        self._weight_names: dict[tuple, str] = {}
        self._transposed: dict[tuple, LTensor] = {}

    # ------------------------------------------------------------ ops

    def op(self, op_type: str, inputs, outputs: int = 1, name: str | None = None, **attrs):
        names = [t.name if isinstance(t, LTensor) else t for t in inputs]
        return self.b.op(op_type, names, outputs, name, **attrs)

    def const(self, value, dtype=np.float32, name: str = "const") -> str:
        return self.b.const(value, dtype, name)

    def ints(self, values, name: str = "shape") -> str:
        return self.b.ints(values, name)

    # ------------------------------------------------------------ weights

    def keras_weight(self, name: str, layer=None) -> np.ndarray:
        """The weight in Keras layout (from --weights, or freshly initialised)."""
        layer = layer or self.layer
        return self.weights[layer.name][name]

    def weight(
        self,
        name: str,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        key: str = "",
        layer=None,
    ) -> str:
        """An initializer `<layer>/<name>` holding the weight, converted by `transform` to
        the layout ONNX wants. Shared layers reuse it; `key` tells two conversions apart."""
        layer = layer or self.layer
        cache = (layer.name, name, key)
        if cache not in self._weight_names:
            array = None
            as_drawn = transform is None or getattr(transform, "rearranges_only", False)
            if as_drawn and hasattr(self.weights, "draw_rearranged"):
                # fresh iid draws: possibly still being drawn (see pending.py)
                array = self.weights.draw_rearranged(layer, name, transform)
            if array is None:
                array = self.keras_weight(name, layer)
                if transform is not None:
                    array = transform(array)
            suffix = f"_{key}" if key else ""
            full = f"{layer.name}/{name}{suffix}"
            if self.training:
                spec = next(w for w in layer.weights if w.name == name)
                trainable = bool(layer.trainable and spec.trainable)
                self.b.unique(full)
                array = np.ascontiguousarray(resolve(array), np.float32)
                self.params[full] = (array, trainable, spec)
                self._weight_names[cache] = full
            else:
                if not isinstance(array, PendingArray):
                    array = np.ascontiguousarray(array, dtype=np.float32)
                self._weight_names[cache] = self.b.initializer(full, array)
        return self._weight_names[cache]

    def update_buffer(self, param: str, new_value: str) -> None:
        """Training: a non-trainable weight (a moving average) takes `new_value` after the
        step."""
        self.buffer_updates[param] = new_value

    def uniform_noise(self, like: LTensor, stream: int = 0) -> str:
        """Training: uniform [0, 1) numbers shaped like `like`, from a counter-based hash of
        (layer, step, element): the same step always draws the same numbers, so a resumed
        run repeats an uninterrupted one exactly."""
        from transpiler.emit.onnx.random import counter_uniform

        return counter_uniform(self, like.name, f"{self.layer.name}#{stream}")

    # ------------------------------------------------------------ layouts

    def logical(self, t: LTensor) -> LTensor:
        """The tensor in Keras's axis order (one Transpose, made once per value)."""
        if t.perm is None:
            return t
        key = (t.name, None)
        if key not in self._transposed:
            out = self.b.op("Transpose", [t.name], perm=list(inverse(t.perm)))
            self._transposed[key] = LTensor(out, t.type, None)
        return self._keep_mask(self._transposed[key], t.mask)

    def stored_as(self, t: LTensor, perm: tuple[int, ...] | None) -> LTensor:
        """The tensor stored with `perm` (None = logical)."""
        if t.perm == perm:
            return t
        if perm is None:
            return self.logical(t)
        key = (t.name, perm)
        if key not in self._transposed:
            src = self.logical(t)
            out = self.b.op("Transpose", [src.name], perm=list(perm))
            self._transposed[key] = LTensor(out, t.type, perm)
        return self._keep_mask(self._transposed[key], t.mask)

    def _keep_mask(self, t: LTensor, mask: str | None) -> LTensor:
        """A relaid value keeps its Keras mask (see transpiler.layers.masking)."""
        if mask is None:
            return t
        self.b.masks[t.name] = mask
        return LTensor(t.name, t.type, t.perm, mask)

    def channels_first(self, t: LTensor, data_format: str) -> LTensor:
        """Stored as (N, C, spatial...), what ONNX's Conv and pooling ops read."""
        if data_format == "channels_first":
            return self.logical(t)
        return self.stored_as(t, channels_first_perm(t.rank))

    def result(self, name: str, type: TensorType, data_format: str) -> LTensor:
        """An (N, C, spatial...) op output, described as the layer's logical output."""
        if data_format == "channels_first":
            return LTensor(name, type, None)
        return LTensor(name, type, channels_first_perm(type.rank))

    # ------------------------------------------------------------ activations

    def activation(self, t: LTensor, name: str, out_type: TensorType | None = None) -> LTensor:
        """Keras activation `name` applied to t (layout kept)."""
        out_type = out_type or t.type
        if name == "linear":
            return t if out_type == t.type else t.like(t.name, out_type)
        x = t.name
        simple = {
            "relu": "Relu",
            "sigmoid": "Sigmoid",
            "tanh": "Tanh",
            "softplus": "Softplus",
            "softsign": "Softsign",
            "exponential": "Exp",
            "exp": "Exp",
            "mish": "Mish",
            "hard_silu": "HardSwish",
        }
        if name in simple:
            return t.like(self.b.op(simple[name], [x]), out_type)
        if name == "relu6":
            return t.like(self.b.op("Clip", [x, self.const(0.0), self.const(6.0)]), out_type)
        if name == "leaky_relu":
            return t.like(self.b.op("LeakyRelu", [x], alpha=0.2), out_type)
        if name == "elu":
            return t.like(self.b.op("Elu", [x], alpha=1.0), out_type)
        if name == "selu":
            return t.like(self.b.op("Selu", [x], alpha=SELU_ALPHA, gamma=SELU_SCALE), out_type)
        if name == "gelu":
            return t.like(self.b.op("Gelu", [x], approximate="none"), out_type)
        if name == "silu":
            s = self.b.op("Sigmoid", [x])
            return t.like(self.b.op("Mul", [x, s]), out_type)
        if name == "hard_sigmoid":
            return t.like(self.b.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5), out_type)
        if name in ("softmax", "log_softmax"):
            op = "Softmax" if name == "softmax" else "LogSoftmax"
            return t.like(self.b.op(op, [x], axis=t.physical_axis(-1)), out_type)
        raise NotImplementedError(f"no ONNX lowering for the activation '{name}'")
