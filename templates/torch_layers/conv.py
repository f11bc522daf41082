"""Convolutions with Keras's padding rules: TensorFlow's 'same' padding for strided
windows (the extra pixel at the end, computed from the input size, as timm's Conv2dSame
does), 'causal' padding, and transposed convolutions cropped unevenly."""

import torch
from torch import nn


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> tuple:
    """(before, after) of Keras's 'same' padding along one axis of `length`: the output
    has ceil(length / stride) positions, and an odd total puts the extra one after."""
    span = (kernel - 1) * dilation + 1
    total = max((-(-length // stride) - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel_size, stride, dilation, value: float = 0.0):
    """x (batch, channels, *spatial) padded with `value` for a 'same' window."""
    pads = []
    axes = zip(x.shape[2:], kernel_size, stride, dilation)
    for length, k, s, d in reversed(list(axes)):
        pads += same_padding(length, k, s, d)  # pad lists the last axis first
    return nn.functional.pad(x, pads, value=value)


class SamePadding:
    """Keras's padding='same' for any stride, mixed into a torch convolution: the input
    is padded in forward, from its size (as timm's Conv2dSame does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return self._conv_forward(x, self.weight, self.bias)


class Conv1dSame(SamePadding, nn.Conv1d):
    """nn.Conv1d with Keras's padding='same' for any stride."""


class Conv2dSame(SamePadding, nn.Conv2d):
    """nn.Conv2d with Keras's padding='same' for any stride."""


class Conv3dSame(SamePadding, nn.Conv3d):
    """nn.Conv3d with Keras's padding='same' for any stride."""


class CausalConv1d(nn.Conv1d):
    """nn.Conv1d with Keras's padding='causal': dilation * (kernel_size - 1) zeros on the
    left only, so output step t sees no input after t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0))
        return self._conv_forward(x, self.weight, self.bias)


def crop_spatial(y, crop):
    """y (batch, channels, *spatial) without crop[i] = (begin, end) on spatial axis i."""
    for axis, (begin, end) in enumerate(crop, start=2):
        if begin or end:
            y = y.narrow(axis, begin, y.shape[axis] - begin - end)
    return y


class Cropped:
    """A transposed convolution whose output loses `crop` ((begin, end) per spatial
    axis) more: Keras's may trim the two ends unevenly, torch's padding cannot."""

    def __init__(self, *args, crop: tuple, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.crop = crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return crop_spatial(super().forward(x), self.crop)


class CroppedConvTranspose1d(Cropped, nn.ConvTranspose1d):
    """nn.ConvTranspose1d, cropped as Keras's Conv1DTranspose."""


class CroppedConvTranspose2d(Cropped, nn.ConvTranspose2d):
    """nn.ConvTranspose2d, cropped as Keras's Conv2DTranspose."""
