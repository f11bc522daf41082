"""Pooling with Keras's rules: 'same' windows padded as TensorFlow pads them (the average
leaves the padded cells out), and global pooling over any axes (masked for
GlobalAveragePooling1D)."""

import torch
from torch import nn

from .conv import pad_same

MAX_POOLS = (
    nn.functional.max_pool1d,
    nn.functional.max_pool2d,
    nn.functional.max_pool3d,
)
AVG_POOLS = (
    nn.functional.avg_pool1d,
    nn.functional.avg_pool2d,
    nn.functional.avg_pool3d,
)


class MaxPoolingSame(nn.Module):
    """Keras's max pooling with padding='same' on (batch, channels, *spatial): the input
    is padded with -inf as TensorFlow pads it, for any input size."""

    def __init__(self, pool_size: tuple, strides: tuple) -> None:
        super().__init__()
        self.pool_size, self.strides = pool_size, strides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = (1,) * len(self.pool_size)
        x = pad_same(x, self.pool_size, self.strides, ones, value=float("-inf"))
        return MAX_POOLS[len(self.pool_size) - 1](x, self.pool_size, self.strides)


class AveragePoolingSame(nn.Module):
    """Keras's average pooling with padding='same' on (batch, channels, *spatial): each
    window's mean over the cells inside the input (TensorFlow's rule), for any input
    size and uneven pads."""

    def __init__(self, pool_size: tuple, strides: tuple) -> None:
        super().__init__()
        self.pool_size, self.strides = pool_size, strides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = (1,) * len(self.pool_size)
        pool = AVG_POOLS[len(self.pool_size) - 1]
        padded = pad_same(x, self.pool_size, self.strides, ones)
        ones_in = torch.ones_like(x[:1, :1])
        inside = pad_same(ones_in, self.pool_size, self.strides, ones)
        total = pool(padded, self.pool_size, self.strides)
        return total / pool(inside, self.pool_size, self.strides)


class GlobalAveragePooling(nn.Module):
    """The mean over `dims` (Keras's GlobalAveragePooling*D); with a Keras mask
    (batch, steps) on a (batch, steps, channels) input, the mean of the unmasked steps
    (nan for a sample with none, as in Keras)."""

    def __init__(self, dims: tuple, keepdims: bool = False) -> None:
        super().__init__()
        self.dims, self.keepdims = dims, keepdims

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        if mask is None:
            return x.mean(dim=self.dims, keepdim=self.keepdims)
        keep = mask.unsqueeze(-1).to(x.dtype)
        total = (x * keep).sum(dim=1, keepdim=self.keepdims)
        return total / keep.sum(dim=1, keepdim=self.keepdims)


class GlobalMaxPooling(nn.Module):
    """The maximum over `dims` (Keras's GlobalMaxPooling*D)."""

    def __init__(self, dims: tuple, keepdims: bool = False) -> None:
        super().__init__()
        self.dims, self.keepdims = dims, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=self.dims, keepdim=self.keepdims)
