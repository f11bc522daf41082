"""Keras's recurrent layers, written as the loop Keras runs: SimpleRNN, LSTM (gates i, f,
c, o), GRU (gates z, r, h; reset_after either way) and Bidirectional.

The weights keep Keras's names and layouts (kernel (features, gates * units),
recurrent_kernel (units, gates * units), bias), so Keras weights load unchanged. A Keras
mask (batch, steps) skips masked steps: the states carry over and the step repeats the
previous output (zeros with zero_output_for_mask, which Bidirectional sets). go_backwards
runs over the reversed sequence and returns its outputs in that order, as Keras does.
In training, dropout and recurrent_dropout draw one mask per sequence (one per gate with
recurrent_dropout, as Keras's implementation 1 does). Where torch's fused kernel computes
exactly this loop (no mask, the default activations, no dropout in training), forward
runs it instead, on the same Keras-layout weights.
"""

import torch
from torch import nn


class RecurrentLayer(nn.Module):
    """The Keras RNN loop around a cell; subclasses define `gates`, `states` and
    `step(xw, states, recurrent_masks)`."""

    gates = 1
    states = 1

    def __init__(
        self,
        input_size: int,
        units: int,
        activation=torch.tanh,
        recurrent_activation=torch.sigmoid,
        use_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.units = units
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        self.zero_output_for_mask = False
        width = self.gates * units
        kernel = nn.init.xavier_uniform_(torch.empty(input_size, width))
        self.kernel = nn.Parameter(kernel)
        recurrent = nn.init.orthogonal_(torch.empty(units, width))
        self.recurrent_kernel = nn.Parameter(recurrent)
        self.bias = nn.Parameter(torch.zeros(self.bias_shape())) if use_bias else None

    def bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def input_bias(self):
        return self.bias

    def dropout_masks(self, like, rate: float):
        """Keras's dropout masks for a (batch, width) tensor: one, or one per gate."""
        if not self.training or rate == 0:
            return None
        count = self.gates if self.recurrent_dropout > 0 else 1
        keep = torch.ones(count, *like.shape, dtype=like.dtype, device=like.device)
        return list(nn.functional.dropout(keep, rate, training=True))

    def project(self, x):
        """x @ kernel + bias for every step at once: (batch, steps, gates * units)."""
        masks = self.dropout_masks(x[:, 0], self.dropout)
        if masks is None:
            xw = x @ self.kernel
        else:
            kernels = self.kernel.chunk(len(masks), dim=1)
            xw = torch.cat([(x * m[:, None]) @ k for m, k in zip(masks, kernels)], -1)
        bias = self.input_bias()
        return xw if bias is None else xw + bias

    @staticmethod
    def recur(h, kernel, masks):
        """h @ kernel, with the recurrent-dropout masks on h (one per gate block)."""
        if masks is None:
            return h @ kernel
        if len(masks) == 1:
            return (h * masks[0]) @ kernel
        kernels = kernel.chunk(len(masks), dim=1)
        return torch.cat([(h * m) @ k for m, k in zip(masks, kernels)], -1)

    def default_activations(self) -> bool:
        tanh = self.activation is torch.tanh
        return tanh and self.recurrent_activation is torch.sigmoid

    def fused(self):
        """torch's fused kernel for this layer and its weights in torch's layout (gates
        in torch's order), or None where the kernel computes something else."""

    def forward(self, x: torch.Tensor, mask=None, initial_state=None):
        batch, steps = x.shape[0], x.shape[1]
        if initial_state is None:
            initial_state = [x.new_zeros(batch, self.units)] * self.states
        dropping = self.training and (self.dropout > 0 or self.recurrent_dropout > 0)
        kernel = None if mask is not None or dropping else self.fused()
        if kernel is not None:
            return self.forward_fused(x, initial_state, *kernel)
        states = list(initial_state)
        recurrent_masks = self.dropout_masks(states[0], self.recurrent_dropout)
        xw = self.project(x)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs, last = [], x.new_zeros(batch, self.units)
        for t in order:
            new = self.step(xw[:, t], states, recurrent_masks)
            if mask is None:
                states, last = new, new[0]
            else:
                keep = mask[:, t, None]
                states = [torch.where(keep, n, s) for n, s in zip(new, states)]
                shown = torch.zeros_like(last) if self.zero_output_for_mask else last
                last = torch.where(keep, new[0], shown)
            if self.return_sequences:
                outputs.append(last)
        y = torch.stack(outputs, 1) if self.return_sequences else last
        return (y, *states) if self.return_state else y

    def forward_fused(self, x, initial_state, op, weights):
        if self.go_backwards:  # Keras runs over the reversed sequence
            x = x.flip(1)
        hx = [s[None] for s in initial_state]
        hx = tuple(hx) if len(hx) > 1 else hx[0]
        bias = self.bias is not None
        y, *states = op(x, hx, weights, bias, 1, 0.0, self.training, False, True)
        states = [s[0] for s in states]
        y = y if self.return_sequences else y[:, -1]
        return (y, *states) if self.return_state else y

    def torch_weights(self, order=None):
        """kernel, recurrent_kernel, bias in torch's layout: (gates * units, in), gate
        blocks reordered by `order`; the recurrent bias Keras has not is zeros."""

        def gates(w):
            if order is None:
                return w
            blocks = w.chunk(self.gates, -1)
            return torch.cat([blocks[g] for g in order], -1)

        weights = [gates(self.kernel).T, gates(self.recurrent_kernel).T]
        if self.bias is None:
            return weights
        bias = self.bias if self.bias.dim() == 1 else self.bias[0]
        recurrent = torch.zeros_like(bias) if self.bias.dim() == 1 else self.bias[1]
        return [*weights, gates(bias), gates(recurrent)]


class SimpleRNN(RecurrentLayer):
    """Keras's SimpleRNN: h = activation(x @ kernel + bias + h @ recurrent_kernel)."""

    def fused(self):
        ops = {torch.tanh: torch.rnn_tanh, torch.relu: torch.rnn_relu}
        op = ops.get(self.activation)
        return None if op is None else (op, self.torch_weights())

    def step(self, xw, states, recurrent_masks):
        z = xw + self.recur(states[0], self.recurrent_kernel, recurrent_masks)
        return [self.activation(z)]


class LSTM(RecurrentLayer):
    """Keras's LSTM, gates in Keras's order i, f, c, o; states (h, c)."""

    gates = 4
    states = 2

    def fused(self):
        if not self.default_activations():
            return None
        return torch.lstm, self.torch_weights()

    def step(self, xw, states, recurrent_masks):
        h, c = states
        z = xw + self.recur(h, self.recurrent_kernel, recurrent_masks)
        zi, zf, zc, zo = z.chunk(4, dim=-1)
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = f * c + i * self.activation(zc)
        o = self.recurrent_activation(zo)
        return [o * self.activation(c), c]


class GRU(RecurrentLayer):
    """Keras's GRU, gates in Keras's order z, r, h: h = z * h + (1 - z) * hh. With
    reset_after (Keras's default) the reset gate multiplies the recurrent projection
    and bias is (2, 3 * units), input and recurrent rows; else it multiplies h."""

    gates = 3

    def __init__(self, *args, reset_after: bool = True, **kwargs) -> None:
        self.reset_after = reset_after
        super().__init__(*args, **kwargs)

    def bias_shape(self) -> tuple:
        width = self.gates * self.units
        return (2, width) if self.reset_after else (width,)

    def input_bias(self):
        if self.bias is not None and self.reset_after:
            return self.bias[0]
        return self.bias

    def fused(self):
        if not (self.default_activations() and self.reset_after):
            return None
        # Keras's gates are z, r, h; torch's r, z, n
        return torch.gru, self.torch_weights(order=(1, 0, 2))

    def step(self, xw, states, recurrent_masks):
        (h,) = states
        n = self.units
        xz, xr, xh = xw.chunk(3, dim=-1)
        if self.reset_after:
            inner = self.recur(h, self.recurrent_kernel, recurrent_masks)
            if self.bias is not None:
                inner = inner + self.bias[1]
            rz, rr, rh = inner.chunk(3, dim=-1)
            z = self.recurrent_activation(xz + rz)
            r = self.recurrent_activation(xr + rr)
            hh = self.activation(xh + r * rh)
        else:
            zr_masks = recurrent_masks and recurrent_masks[:2]
            inner = self.recur(h, self.recurrent_kernel[:, : 2 * n], zr_masks)
            rz, rr = inner.chunk(2, dim=-1)
            z = self.recurrent_activation(xz + rz)
            r = self.recurrent_activation(xr + rr)
            hm = h if recurrent_masks is None else h * recurrent_masks[-1]
            hh = self.activation(xh + (r * hm) @ self.recurrent_kernel[:, 2 * n :])
        return [z * h + (1 - z) * hh]


class Bidirectional(nn.Module):
    """Keras's Bidirectional: the forward layer and the backward layer (go_backwards)
    over the same sequence, the backward outputs flipped back into time order, merged
    by merge_mode (concat, sum, mul, ave, or None for both). With return_state the
    forward layer's states, then the backward layer's, follow the output."""

    def __init__(self, forward_layer, backward_layer, merge_mode="concat") -> None:
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = forward_layer.return_sequences
        self.return_state = forward_layer.return_state
        # Keras sets zero_output_for_mask = return_sequences on both layers
        forward_layer.zero_output_for_mask = self.return_sequences
        backward_layer.zero_output_for_mask = self.return_sequences

    def forward(self, x: torch.Tensor, mask=None, initial_state=None):
        n = self.forward_layer.states
        fwd_state = bwd_state = None
        if initial_state is not None:
            fwd_state, bwd_state = initial_state[:n], initial_state[n:]
        y = self.forward_layer(x, mask, fwd_state)
        y_rev = self.backward_layer(x, mask, bwd_state)
        states = []
        if self.return_state:
            (y, *fwd_states), (y_rev, *bwd_states) = y, y_rev
            states = fwd_states + bwd_states
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode is None:
            return (y, y_rev, *states)
        if self.merge_mode == "concat":
            y = torch.cat([y, y_rev], dim=-1)
        elif self.merge_mode == "sum":
            y = y + y_rev
        elif self.merge_mode == "mul":
            y = y * y_rev
        else:  # ave
            y = (y + y_rev) / 2
        return (y, *states) if states else y
