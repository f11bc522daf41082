"""Keras's preprocessing layers that are part of a model: Rescaling and Normalization.
Both cast their input to float32 first (uint8 images, integer ids, bools too), as
Keras computes them in the layer's compute dtype."""

import torch
from torch import nn


def keras_constant(value, perm=None) -> torch.Tensor:
    """A layer's constant (a number or a nested list, broadcast against the input as
    numpy broadcasts: aligned on the last axis) laid out for an input stored in the axis
    order `perm` (stored = logical.permute(perm); None: Keras's order)."""
    value = torch.tensor(value, dtype=torch.float32)
    if perm is None or value.dim() == 0:
        return value
    value = value.reshape((1,) * (len(perm) - value.dim()) + tuple(value.shape))
    return value.permute(perm)


class Rescaling(nn.Module):
    """Keras's Rescaling: float32(x) * scale + offset."""

    def __init__(self, scale, offset=0.0, perm=None) -> None:
        super().__init__()
        self.register_buffer("scale", keras_constant(scale, perm), persistent=False)
        self.register_buffer("offset", keras_constant(offset, perm), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.scale + self.offset


class Normalization(nn.Module):
    """Keras's Normalization: (x - mean) / max(sqrt(variance), 1e-7), or with invert
    mean + x * max(sqrt(variance), 1e-7), on float32(x).

    Without `mean` and `variance` the statistics are the layer's Keras weights: buffers
    of `shape` (the sizes of the axes that keep their own statistics), with Keras's
    count, as adapt() computed them (load them with load_keras_weights). Given ones are
    constants. `view` shapes the statistics against x in Keras's axis order (1 on the
    other axes), `perm` is the order x is stored in.
    """

    def __init__(
        self,
        shape: tuple,
        view: tuple,
        mean=None,
        variance=None,
        invert: bool = False,
        perm=None,
    ) -> None:
        super().__init__()
        self.view, self.invert, self.perm = view, invert, perm
        if mean is None:
            self.register_buffer("mean", torch.zeros(shape))
            self.register_buffer("variance", torch.ones(shape))
            self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        else:
            given = {"mean": mean, "variance": variance}
            for name, value in given.items():
                value = torch.tensor(value, dtype=torch.float32)
                self.register_buffer(name, value, persistent=False)

    def against(self, statistic: torch.Tensor) -> torch.Tensor:
        """A statistic shaped to broadcast against x as x is stored."""
        statistic = statistic.reshape(self.view)
        return statistic if self.perm is None else statistic.permute(self.perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = self.against(self.mean)
        std = torch.sqrt(self.against(self.variance)).clamp_min(1e-7)
        return mean + x * std if self.invert else (x - mean) / std
