"""Keras's noise and activation layers that torch.nn has no exact module for."""

import torch
from torch import nn


class SpatialDropout(nn.Module):
    """Dropout whose mask is shared along `dims` (as the tensor is stored): Keras's
    SpatialDropout1D/2D (whole channels) and Dropout(noise_shape=...)."""

    def __init__(self, rate: float, dims: tuple) -> None:
        super().__init__()
        self.rate, self.dims = rate, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        shape = [1 if d in self.dims else n for d, n in enumerate(x.shape)]
        keep = torch.rand(shape, dtype=x.dtype, device=x.device) >= self.rate
        return x * keep / (1.0 - self.rate)


class GaussianNoise(nn.Module):
    """Keras's GaussianNoise: adds N(0, stddev^2) noise in training only."""

    def __init__(self, stddev: float) -> None:
        super().__init__()
        self.stddev = stddev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.stddev == 0:
            return x
        return x + torch.randn_like(x) * self.stddev


class ReLU(nn.Module):
    """Keras's ReLU with options: x from `threshold` up (capped at max_value), and
    negative_slope * (x - threshold) below it."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0) -> None:
        super().__init__()
        self.max_value, self.negative_slope = max_value, negative_slope
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.where(x > self.threshold, x, 0.0) if self.threshold else torch.relu(x)
        if self.max_value is not None:
            y = torch.clamp(y, 0.0, self.max_value)
        if self.negative_slope:
            y = y - self.negative_slope * torch.relu(self.threshold - x)
        return y


class PReLU(nn.Module):
    """Keras's PReLU: relu(x) - alpha * relu(-x), alpha in Keras's shape (the input
    shape without batch, 1 on shared axes); `perm` is the order the input is stored
    in (None: Keras's)."""

    def __init__(self, shape: tuple, perm: tuple | None = None) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(shape))
        self.perm = perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None]
        if self.perm is not None:
            alpha = alpha.permute(self.perm)
        return torch.relu(x) - alpha * torch.relu(-x)


class Softmax(nn.Module):
    """Keras's Softmax over several axes: exp(x - logsumexp(x, dims))."""

    def __init__(self, dims: tuple) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x - torch.logsumexp(x, dim=self.dims, keepdim=True))


class Exponential(nn.Module):
    """Keras's exponential activation: exp(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)
