"""Attention layers: MultiHeadAttention (Keras 3 signature and weight layout)."""

from __future__ import annotations

import math

from transpiler.graph.types import TensorType, dims_compatible, format_shape
from transpiler.layers.args import (
    ArgError,
    boolean,
    describe,
    float_in,
    int_list,
    integer,
    is_int,
    no_constraint,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg, CallArg, Layer, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.regularizers import regularizer


def _output_shape(value) -> tuple[int, ...] | None:
    """None, a size, or a list of sizes (Keras treats an empty value as None)."""
    if value is None:
        return None
    if is_int(value):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(is_int(v) and v > 0 for v in value):
        raise ArgError(f"expected a positive integer or a list of them, got {describe(value)}")
    return tuple(value) or None


@register
class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al. 2017): projects query, key and value per head,
    attends with scaled dot products over `attention_axes`, and projects the concatenated
    heads back.

    Args: num_heads, key_dim (size of each query/key head), value_dim=None (= key_dim),
    dropout=0.0 (on the attention probabilities), use_bias=true, output_shape=None (the
    query's last size; or a size or list of sizes), attention_axes=None (all axes but batch
    and features; axes count the batch axis as 0), sliding_window=None (each query attends
    to keys within this distance), flash_attention=None (no effect),
    kernel_initializer=glorot_uniform, bias_initializer=zeros, kernel_regularizer,
    bias_regularizer, activity_regularizer, use_gate=false (a sigmoid gate on each head's
    output, computed from the query), seed=None.
    Input: query (batch, Tq, ..., query_dim), value (batch, Tv, ..., value_dim) and
    optionally key (batch, Tv, ..., key_dim) (default: value); one rank for all.
    Call arguments (by position or name): query, value, key; attention_mask (batch, Tq,
    Tv), nonzero where query step i may attend to value step j; use_causal_mask=false
    (step i attends to steps j <= i). Masks need rank-3 inputs.
    Output shape: (batch, Tq, ..., query_dim), or (batch, Tq, ...) + output_shape.
    Keras masks (Embedding(mask_zero=true)) on query, value and key combine into the
    attention mask, as Keras's `_compute_attention_mask` does (rank-3 inputs); the output
    carries the query's mask.
    Weights: query/kernel (query_dim, num_heads, key_dim), query/bias (num_heads, key_dim),
    key/kernel (key_dim_in, num_heads, key_dim), key/bias, [gate/kernel (query_dim,
    num_heads, value_dim), gate/bias,] value/kernel (value_dim_in, num_heads, value_dim),
    value/bias, attention_output/kernel (num_heads, value_dim, *out), attention_output/bias
    (*out); biases only with use_bias.
    """

    family = "attention"
    has_training_mode = True
    supports_masking = True  # the output carries the query's mask
    num_inputs = (2, 3)
    call_signature = (
        CallArg("query", "tensor", True),
        CallArg("value", "tensor", True),
        CallArg("key", "tensor"),
        CallArg("attention_mask", "keyword"),
        CallArg("use_causal_mask", "flag"),
    )
    signature = (
        Arg("num_heads", positive_int),
        Arg("key_dim", positive_int),
        Arg("value_dim", optional(positive_int), None),
        Arg("dropout", float_in(0.0, 1.0, hi_open=True), 0.0),
        Arg("use_bias", boolean, True),
        Arg("output_shape", _output_shape, None),
        Arg("attention_axes", optional(int_list), None),
        Arg("sliding_window", optional(positive_int), None),
        Arg("flash_attention", optional(boolean), None),
        Arg("kernel_initializer", initializer, "glorot_uniform"),
        Arg("bias_initializer", initializer, "zeros"),
        Arg("kernel_regularizer", regularizer, None),
        Arg("bias_regularizer", regularizer, None),
        Arg("activity_regularizer", regularizer, None),
        Arg("kernel_constraint", no_constraint, None),
        Arg("bias_constraint", no_constraint, None),
        Arg("use_gate", boolean, False),
        Arg("seed", optional(integer), None),
    )

    def __init__(self, config: dict, name: str) -> None:
        super().__init__(config, name)
        #: the size of each value head
        self.head_value_dim = self.value_dim or self.key_dim

    def attention_axes_of(self, rank: int) -> tuple[int, ...]:
        """The attention axes as non-negative input axes (1 .. rank-2)."""
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        axes = []
        for a in self.attention_axes:
            index = a + rank if a < 0 else a
            if not 1 <= index <= rank - 2:
                self.fail(
                    f"MultiHeadAttention: attention axis {a} is not valid for inputs of rank "
                    f"{rank}",
                    f"attention axes are the axes between batch and features: 1 to "
                    f"{rank - 2} (or {1 - rank} to -2)",
                    arg="attention_axes",
                )
            if index in axes:
                self.fail(
                    f"MultiHeadAttention: attention_axes names axis {a} twice",
                    arg="attention_axes",
                )
            axes.append(index)
        return tuple(sorted(axes))

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        names = ("query", "value", "key")
        for what, t in zip(names, inputs):
            self.expect_float(t)
            if t.rank < 3:
                self.fail(
                    f"MultiHeadAttention expects a {what} of rank 3 or more; "
                    f"got {format_shape(t.shape)}",
                    "MultiHeadAttention needs (batch, sequence, features)",
                )
        if len({t.rank for t in inputs}) > 1:
            shapes = ", ".join(f"{n} {format_shape(t.shape)}" for n, t in zip(names, inputs))
            self.fail(f"MultiHeadAttention expects query, value and key of one rank; got {shapes}")
        rank = query.rank
        if not all(map(dims_compatible, value.shape[1:-1], key.shape[1:-1])):
            self.fail(
                f"MultiHeadAttention: value and key should agree on every axis but the last; "
                f"got value {format_shape(value.shape)} and key {format_shape(key.shape)}",
                "key and value are two views of the same sequence",
            )
        attention = self.attention_axes_of(rank)
        for i in range(rank - 1):
            if i not in attention and not dims_compatible(query.shape[i], value.shape[i]):
                self.fail(
                    f"MultiHeadAttention: query {format_shape(query.shape)} and value "
                    f"{format_shape(value.shape)} differ on axis {i}, which is not an "
                    "attention axis",
                    "only the attention axes may differ between query and value",
                )
        q_dim = self.need_known(query.shape[-1], "query feature size (last axis)")
        v_dim = self.need_known(value.shape[-1], "value feature size (last axis)")
        k_dim = self.need_known(key.shape[-1], "key feature size (last axis)")
        heads, head_v = self.num_heads, self.head_value_dim
        out = self.output_shape or (q_dim,)
        weights = self._projection("query", (q_dim, heads, self.key_dim))
        weights += self._projection("key", (k_dim, heads, self.key_dim))
        if self.use_gate:
            weights += self._projection("gate", (q_dim, heads, head_v))
        weights += self._projection("value", (v_dim, heads, head_v))
        weights += self._projection("attention_output", (heads, head_v, *out), len(out))
        return weights

    def check_call(self, inputs: list[TensorType], call) -> None:
        """attention_mask: (batch, Tq, Tv), or sizes of 1 that broadcast to it; the query,
        value and key of rank 3 (ktrans lowers masks for one attention axis)."""
        mask = call.tensors.get("attention_mask")
        if mask is None and not call.options.get("use_causal_mask"):
            return
        query, value = inputs[0], inputs[1]
        what = "attention_mask" if mask is not None else "use_causal_mask"
        if query.rank != 3:
            self.fail(
                f"MultiHeadAttention: {what} with inputs of rank {query.rank} is not "
                "supported; ktrans masks attention over one sequence axis (rank-3 inputs)",
                arg=what,
            )
        if mask is None:
            return
        want = (query.shape[0], query.shape[1], value.shape[1])
        fits = mask.rank == 3 and all(
            d == 1 or dims_compatible(d, w) for d, w in zip(mask.shape, want)
        )
        if not fits:
            self.fail(
                f"MultiHeadAttention: attention_mask should have shape {format_shape(want)} "
                f"(batch, query steps, value steps); got {format_shape(mask.shape)}",
                "entry [b, i, j] says whether query step i may attend to value step j",
                arg="attention_mask",
            )

    def _projection(self, name: str, shape: tuple[int, ...], out_dims: int = 2) -> list[Weight]:
        """An EinsumDense's kernel and bias (the bias covers the last `out_dims` axes)."""
        weights = [
            self.weight(
                f"{name}/kernel",
                shape,
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
        ]
        if self.use_bias:
            weights.append(
                self.weight(
                    f"{name}/bias",
                    shape[-out_dims:],
                    self.bias_initializer,
                    regularizer=self.bias_regularizer,
                )
            )
        return weights

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        query = inputs[0]
        out = self.output_shape or (query.shape[-1],)
        return query.with_shape(query.shape[:-1] + tuple(out))

    def describe_config(self) -> str:
        return f"MultiHeadAttention(num_heads={self.num_heads}, key_dim={self.key_dim})"

    def lower(self, ctx, inputs):
        # Keras's math with the attention axes flattened into one sequence axis: project
        # to (batch, seq, heads, size), scale the query by 1/sqrt(key_dim), softmax over
        # the keys, combine the values, project the heads back.
        query, value = (ctx.logical(t) for t in inputs[:2])
        key = ctx.logical(inputs[2]) if len(inputs) == 3 else value
        rank = query.rank
        if self.attention_axes_of(rank) != tuple(range(1, rank - 1)):
            raise NotImplementedError(
                f"attention_axes={list(self.attention_axes)}: only the default attention axes "
                f"(all axes between batch and features, here {list(range(1, rank - 1))}) are "
                "lowered"
            )
        if self.sliding_window is not None and rank != 3:
            raise NotImplementedError("sliding_window with inputs of rank above 3")
        heads, key_dim, value_dim = self.num_heads, self.key_dim, self.head_value_dim
        out_shape = self.output_shape or (query.type.shape[-1],)

        def project(t, name: str, size: int) -> str:
            x = t.name
            if rank > 3:
                x = ctx.op("Reshape", [x, ctx.ints([0, -1, t.type.shape[-1]])])
            kernel = ctx.weight(f"{name}/kernel", lambda k: k.reshape(k.shape[0], -1))
            y = ctx.op("MatMul", [x, kernel])
            if self.use_bias:
                y = ctx.op("Add", [y, ctx.weight(f"{name}/bias", lambda b: b.reshape(-1))])
            return ctx.op("Reshape", [y, ctx.ints([0, 0, heads, size])])

        q = ctx.op("Transpose", [project(query, "query", key_dim)], perm=[0, 2, 1, 3])
        q = ctx.op("Mul", [q, ctx.const(1.0 / math.sqrt(float(key_dim)))])
        k = ctx.op("Transpose", [project(key, "key", key_dim)], perm=[0, 2, 3, 1])
        v = ctx.op("Transpose", [project(value, "value", value_dim)], perm=[0, 2, 1, 3])
        scores = ctx.op("MatMul", [q, k])  # (batch, heads, Tq, Tv)
        masks = [t.mask for t in inputs]
        given = ctx.call.tensors.get("attention_mask")
        causal = bool(ctx.call.options.get("use_causal_mask"))
        if any(m is not None for m in masks) or given is not None or causal:
            probs = self._masked_probs(ctx, masks, query, value, q, k, scores, given, causal)
        else:
            if self.sliding_window is not None:
                keep = self._window_mask(ctx, query, value, q, k)
                scores = ctx.op("Where", [keep, scores, ctx.const(-1e9)])
            probs = ctx.op("Softmax", [scores], axis=-1)
        if ctx.training and self.dropout > 0:  # Keras's Dropout on the probabilities
            like = query.like(probs)
            keep = ctx.op("GreaterOrEqual", [ctx.uniform_noise(like), ctx.const(self.dropout)])
            scale = ctx.op("Cast", [keep], to=1)
            scale = ctx.op("Mul", [scale, ctx.const(1.0 / (1.0 - self.dropout))])
            probs = ctx.op("Mul", [probs, scale])
        o = ctx.op("Transpose", [ctx.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        if self.use_gate:
            o = ctx.op("Mul", [o, ctx.op("Sigmoid", [project(query, "gate", value_dim)])])
        o = ctx.op("Reshape", [o, ctx.ints([0, 0, heads * value_dim])])
        kernel = ctx.weight("attention_output/kernel", lambda w: w.reshape(heads * value_dim, -1))
        y = ctx.op("MatMul", [o, kernel])
        if self.use_bias:
            y = ctx.op("Add", [y, ctx.weight("attention_output/bias", lambda b: b.reshape(-1))])
        out_type = self.output_types([t.type for t in inputs])
        if rank > 3 or len(out_shape) > 1:
            lead = ctx.op("Shape", [query], start=0, end=rank - 1)
            shape = ctx.op("Concat", [lead, ctx.ints(list(out_shape))], axis=0)
            y = ctx.op("Reshape", [y, shape])
        return [query.like(y, out_type)]

    def _masked_probs(
        self, ctx, masks, query, value, q: str, k: str, scores: str, given=None, causal=False
    ) -> str:
        """The attention probabilities under the Keras masks of query, value and key
        (`_compute_attention_mask`: query (B, Tq, 1) & value (B, 1, Tv) & key (B, 1, Tv) &
        the causal mask (Tq, Tv) & the sliding window & the call's attention_mask
        (`given`, B, Tq, Tv)), as Keras applies them: the fused dot-product attention it
        runs for rank-3 inputs without dropout adds a large negative bias where the mask is
        false (a row with nothing to attend to becomes uniform), its explicit softmax
        otherwise sets those scores to -1e9 and the probabilities to 0."""
        import numpy as np

        if query.rank != 3:
            raise NotImplementedError(
                "Keras masks (from Embedding(mask_zero=true)) on inputs of rank above 3: "
                "Keras lines them up with the wrong attention axes"
            )
        parts = []
        for i, m in enumerate(masks):
            if m is not None:  # query: (B, 1, Tq, 1); value, key: (B, 1, 1, Tv)
                parts.append(ctx.op("Unsqueeze", [m, ctx.ints([1, 3] if i == 0 else [1, 2])]))
        if causal:
            parts.append(self._causal_mask(ctx, query, value, q, k))
        if self.sliding_window is not None:
            parts.append(self._window_mask(ctx, query, value, q, k))
        if given is not None:
            from transpiler.layers.masking import bool_mask

            parts.append(ctx.op("Unsqueeze", [bool_mask(ctx, given), ctx.ints([1], "axes")]))
        keep = parts[0]
        for part in parts[1:]:
            keep = ctx.op("And", [keep, part])
        if self.dropout > 0:  # Keras's explicit path (masked softmax)
            scores = ctx.op("Where", [keep, scores, ctx.const(-1e9)])
            probs = ctx.op("Softmax", [scores], axis=-1)
            return ctx.op("Where", [keep, probs, ctx.const(0.0)])
        # torch's dot_product_attention: where(mask, 0, -0.7 * 3.38953e38) added to scores
        bias = ctx.op("Where", [keep, ctx.const(0.0), ctx.const(np.float32(3.38953e38 * -0.7))])
        return ctx.op("Softmax", [ctx.op("Add", [scores, bias])], axis=-1)

    def _window_mask(self, ctx, query, value, q: str, k: str) -> str:
        """Keras's sliding window: query i sees key j when |i - j| < sliding_window."""
        import numpy as np

        tq, tv = query.type.shape[1], value.type.shape[1]
        if isinstance(tq, int) and isinstance(tv, int):
            rows, cols = np.arange(tq)[:, None], np.arange(tv)[None, :]
            return ctx.const(np.abs(rows - cols) < self.sliding_window, np.bool_, "window")
        rows, cols = self._step_indices(ctx, q, k)
        distance = ctx.op("Abs", [ctx.op("Sub", [rows, cols])])
        return ctx.op("Less", [distance, ctx.const(self.sliding_window, np.int64)])

    def _causal_mask(self, ctx, query, value, q: str, k: str) -> str:
        """Keras's `_compute_causal_mask`: query i sees key j when j <= i."""
        import numpy as np

        tq, tv = query.type.shape[1], value.type.shape[1]
        if isinstance(tq, int) and isinstance(tv, int):
            return ctx.const(np.tril(np.ones((tq, tv), np.bool_)), np.bool_, "causal")
        rows, cols = self._step_indices(ctx, q, k)
        return ctx.op("GreaterOrEqual", [rows, cols])

    def _step_indices(self, ctx, q: str, k: str) -> tuple[str, str]:
        """(Tq, 1) query step numbers and (Tv,) key step numbers, for run-time lengths."""
        import numpy as np

        zero, one = ctx.const(0, np.int64), ctx.const(1, np.int64)
        n_q = ctx.op("Gather", [ctx.op("Shape", [q]), ctx.const(2, np.int64)], axis=0)
        n_v = ctx.op("Gather", [ctx.op("Shape", [k]), ctx.const(3, np.int64)], axis=0)
        rows = ctx.op("Unsqueeze", [ctx.op("Range", [zero, n_q, one]), ctx.ints([1], "axes")])
        return rows, ctx.op("Range", [zero, n_v, one])
