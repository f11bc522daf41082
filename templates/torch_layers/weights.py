"""Keras's weight layouts and torch's: the two conversions a generated model's
load_keras_weights and keras_weights use."""

import torch


def keras_to_torch(value: torch.Tensor, layout: str) -> torch.Tensor:
    """A Keras weight in the layout of the parameter holding it: "" (the same),
    "linear" (Dense kernel (in, out) -> nn.Linear weight (out, in)), "conv"
    ((*kernel, in, out) -> (out, in, *kernel); a transposed convolution's
    (*kernel, out, in) -> (in, out, *kernel) alike), "depthwise:M" (DepthwiseConv2D
    kernel (*kernel, in, M) -> (in * M, 1, *kernel))."""
    kind = layout.partition(":")[0]
    r = value.dim() - 2
    if kind == "linear":
        return value.T
    if kind == "conv":
        return value.permute(r + 1, r, *range(r))
    if kind == "depthwise":
        return value.flatten(r).permute(r, *range(r)).unsqueeze(1)
    return value


def torch_to_keras(value: torch.Tensor, layout: str) -> torch.Tensor:
    """The inverse of keras_to_torch: a parameter in Keras's layout."""
    kind, _, multiplier = layout.partition(":")
    r = value.dim() - 2
    if kind == "linear":
        return value.T
    if kind == "conv":
        return value.permute(*range(2, r + 2), 1, 0)
    if kind == "depthwise":
        flat = value.squeeze(1).permute(*range(1, r + 1), 0)
        return flat.reshape(*flat.shape[:-1], -1, int(multiplier))
    return value
