"""Keras's reshaping layers that torch.nn has no module for."""

import torch
from torch import nn

from .conv import crop_spatial


class Reshape(nn.Module):
    """Keras's Reshape: (batch, ...) to (batch, *shape); one entry may be -1."""

    def __init__(self, shape: tuple) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    """Keras's Permute, as one torch permute of the stored tensor (`dims` include the
    batch axis here)."""

    def __init__(self, dims: tuple) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class RepeatVector(nn.Module):
    """Keras's RepeatVector: (batch, features) to (batch, n, features)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).repeat(1, self.n, 1)


class Cropping(nn.Module):
    """Keras's Cropping1D / Cropping2D on (batch, channels, *spatial): `cropping` holds
    (start, end) per spatial axis."""

    def __init__(self, cropping: tuple) -> None:
        super().__init__()
        self.cropping = cropping

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return crop_spatial(x, self.cropping)
