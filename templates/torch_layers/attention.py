"""Keras's MultiHeadAttention: its EinsumDense projections (weights in Keras's layout:
query/kernel (query_dim, heads, key_dim)...), masks and two softmax paths."""

import math

import torch
from torch import nn

# torch's scaled_dot_product_attention (Keras's fused path) masks with this bias
MASKED_BIAS = -0.7 * 3.38953e38


class EinsumDense(nn.Module):
    """Keras's EinsumDense as MultiHeadAttention uses it: x (..., *in) @ kernel (*in,
    *out) + bias (*out), where `inputs` says how many leading kernel axes are in."""

    def __init__(self, kernel_shape: tuple, use_bias: bool = True, inputs: int = 1):
        super().__init__()
        self.inputs = inputs
        self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(kernel_shape)))
        bias = torch.zeros(kernel_shape[inputs:])
        self.bias = nn.Parameter(bias) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, out = x.shape[: x.dim() - self.inputs], self.kernel.shape[self.inputs :]
        fan_in = math.prod(self.kernel.shape[: self.inputs])
        y = x.reshape(*lead, fan_in) @ self.kernel.reshape(fan_in, -1)
        if self.bias is not None:
            y = y + self.bias.reshape(-1)
        return y.reshape(*lead, *out)


class MultiHeadAttention(nn.Module):
    """Keras's MultiHeadAttention over every axis between batch and features.

    forward(query, value, key=None, ...) with Keras's masks: query_mask (batch, Tq),
    value_mask and key_mask (batch, Tv), attention_mask (batch, Tq, Tv) and
    use_causal_mask combine into one; as in Keras, rank-3 inputs without dropout take
    the fused path (a large negative bias where masked: a row with nothing to attend to
    becomes uniform), the others an explicit softmax whose masked probabilities are 0.
    """

    def __init__(
        self,
        query_dim: int,
        value_dim_in: int,
        key_dim_in: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        output_shape: tuple,
        use_bias: bool = True,
        dropout: float = 0.0,
        use_gate: bool = False,
        sliding_window: int | None = None,
    ) -> None:
        super().__init__()
        self.key_dim, self.sliding_window = key_dim, sliding_window
        self.dropout_rate = dropout
        heads = num_heads
        self.query = EinsumDense((query_dim, heads, key_dim), use_bias)
        self.key = EinsumDense((key_dim_in, heads, key_dim), use_bias)
        self.gate = None
        if use_gate:
            self.gate = EinsumDense((query_dim, heads, value_dim), use_bias)
        self.value = EinsumDense((value_dim_in, heads, value_dim), use_bias)
        out = (heads, value_dim, *output_shape)
        self.attention_output = EinsumDense(out, use_bias, inputs=2)
        self.dropout = nn.Dropout(dropout)

    def attention_mask(self, tq, tv, masks, attention_mask, use_causal_mask, device):
        """The (batch or 1, Tq, Tv) mask of what each query may see, or None."""
        query_mask, value_mask, key_mask = masks
        parts = []
        if query_mask is not None:
            parts.append(query_mask[:, :, None])
        for mask in (value_mask, key_mask):
            if mask is not None:
                parts.append(mask[:, None, :])
        rows = torch.arange(tq, device=device)[:, None]
        cols = torch.arange(tv, device=device)[None, :]
        if use_causal_mask:
            parts.append((rows >= cols)[None])
        if self.sliding_window is not None:
            parts.append(((rows - cols).abs() < self.sliding_window)[None])
        if attention_mask is not None:
            parts.append(attention_mask.bool())
        if not parts:
            return None
        keep = parts[0]
        for part in parts[1:]:
            keep = keep & part
        return keep

    def forward(
        self,
        query: torch.Tensor,
        value: torch.Tensor,
        key: torch.Tensor | None = None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask: bool = False,
    ) -> torch.Tensor:
        key = value if key is None else key
        batch, lead = query.shape[0], query.shape[1:-1]
        # the attention axes flattened into one: (batch, T, features)
        q_in = query.reshape(batch, -1, query.shape[-1])
        q = self.query(q_in) * (1.0 / math.sqrt(self.key_dim))
        k = self.key(key.reshape(batch, -1, key.shape[-1]))
        v = self.value(value.reshape(batch, -1, value.shape[-1]))
        scores = torch.einsum("bqnh,bknh->bnqk", q, k)
        masks = (query_mask, value_mask, key_mask)
        keep = self.attention_mask(
            q.shape[1], k.shape[1], masks, attention_mask, use_causal_mask, query.device
        )
        if keep is None:
            probs = torch.softmax(scores, dim=-1)
        elif self.dropout_rate > 0 or query.dim() > 3:  # Keras's explicit softmax
            keep = keep[:, None]
            probs = torch.softmax(torch.where(keep, scores, -1e9), dim=-1)
            probs = torch.where(keep, probs, 0.0)
        else:  # Keras's fused dot-product attention
            bias = torch.where(keep[:, None], 0.0, MASKED_BIAS)
            probs = torch.softmax(scores + bias, dim=-1)
        o = torch.einsum("bnqk,bknh->bqnh", self.dropout(probs), v)
        if self.gate is not None:
            o = o * torch.sigmoid(self.gate(q_in))
        y = self.attention_output(o)
        return y.reshape(batch, *lead, *y.shape[2:])
