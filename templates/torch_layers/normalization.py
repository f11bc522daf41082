"""Keras's normalization layers on a tensor stored in any axis order: BatchNormalization
with Keras's moving statistics, LayerNormalization and GroupNormalization. Weights keep
Keras's names and shapes (gamma, beta, moving_mean, moving_variance)."""

import torch
from torch import nn


def on_axis(weight, axis: int, rank: int):
    """A (n,) weight shaped to broadcast along `axis` of a rank-`rank` tensor."""
    shape = [1] * rank
    shape[axis] = -1
    return weight.reshape(shape)


class BatchNormalization(nn.Module):
    """Keras's BatchNormalization over the channel `axis` (as the tensor is stored).

    Training (module.train(), unless trainable=False) normalizes with the batch's mean
    and biased variance and updates the moving statistics as Keras does:
    moving = moving * momentum + batch * (1 - momentum). Inference (module.eval()) and a
    frozen layer use the moving statistics. With a Keras mask (batch, steps) the batch
    statistics weigh the unmasked steps only, as Keras's do.
    """

    def __init__(
        self,
        num_features: int,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.trainable = trainable
        self.gamma = nn.Parameter(torch.ones(num_features)) if scale else None
        self.beta = nn.Parameter(torch.zeros(num_features)) if center else None
        self.register_buffer("moving_mean", torch.zeros(num_features))
        self.register_buffer("moving_variance", torch.ones(num_features))
        if not trainable:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        rank, axis = x.dim(), self.axis % x.dim()
        if self.training and self.trainable:
            dims = [d for d in range(rank) if d != axis]
            mean, variance = self.moments(x, dims, mask)
            with torch.no_grad():
                keep, take = self.momentum, 1.0 - self.momentum
                self.moving_mean.mul_(keep).add_(mean.reshape(-1) * take)
                self.moving_variance.mul_(keep).add_(variance.reshape(-1) * take)
        else:
            mean = on_axis(self.moving_mean, axis, rank)
            variance = on_axis(self.moving_variance, axis, rank)
        inv = torch.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * on_axis(self.gamma, axis, rank)
        y = (x - mean) * inv
        if self.beta is not None:
            y = y + on_axis(self.beta, axis, rank)
        return y

    @staticmethod
    def moments(x, dims, mask):
        """The mean and biased variance over `dims` (kept), weighted by the mask."""
        if mask is None:
            mean = x.mean(dim=dims, keepdim=True)
            return mean, (x - mean).square().mean(dim=dims, keepdim=True)
        keep = mask.unsqueeze(-1).expand_as(x)
        count = keep.to(x.dtype).sum(dim=dims, keepdim=True) + 1e-7  # Keras's epsilon()
        mean = torch.where(keep, x, 0.0).sum(dim=dims, keepdim=True) / count
        distance = torch.where(keep, x - mean, 0.0).square()
        return mean, distance.sum(dim=dims, keepdim=True) / count


class LayerNormalization(nn.Module):
    """Keras's LayerNormalization: each sample normalized over `dims` (as the tensor is
    stored) with its own mean and biased variance.

    gamma and beta keep Keras's shape (the sizes of the normalized axes); `broadcast`
    is that shape in Keras's axis order with 1 elsewhere, and `perm` the order the
    input is stored in (None: as Keras orders it). rms_scaling=True (deprecated in
    Keras) divides by sqrt(variance + epsilon) without centering and has no beta.
    """

    def __init__(
        self,
        shape: tuple,
        dims: tuple,
        broadcast: tuple,
        perm: tuple | None = None,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
    ) -> None:
        super().__init__()
        self.dims, self.broadcast, self.perm = dims, broadcast, perm
        self.epsilon, self.rms_scaling = epsilon, rms_scaling
        scale, center = scale or rms_scaling, center and not rms_scaling
        self.gamma = nn.Parameter(torch.ones(shape)) if scale else None
        self.beta = nn.Parameter(torch.zeros(shape)) if center else None

    def stored(self, weight):
        weight = weight.reshape(self.broadcast)
        return weight if self.perm is None else weight.permute(self.perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=self.dims, keepdim=True)
        centered = x - mean
        variance = centered.square().mean(dim=self.dims, keepdim=True)
        inv = torch.rsqrt(variance + self.epsilon)
        y = (x if self.rms_scaling else centered) * inv
        if self.gamma is not None:
            y = y * self.stored(self.gamma)
        if self.beta is not None:
            y = y + self.stored(self.beta)
        return y


class GroupNormalization(nn.Module):
    """Keras's GroupNormalization: the channels on `axis` (as the tensor is stored) split
    into `groups`, each group of each sample normalized over its channels and every
    axis after them; then gamma and beta per channel."""

    def __init__(
        self,
        groups: int,
        num_features: int,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
    ) -> None:
        super().__init__()
        self.groups, self.axis, self.epsilon = groups, axis, epsilon
        self.gamma = nn.Parameter(torch.ones(num_features)) if scale else None
        self.beta = nn.Parameter(torch.zeros(num_features)) if center else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rank, axis = x.dim(), self.axis % x.dim()
        grouped = x.reshape(*x.shape[:axis], self.groups, -1)
        dims = [*range(1, axis), axis + 1]
        mean = grouped.mean(dim=dims, keepdim=True)
        centered = grouped - mean
        variance = centered.square().mean(dim=dims, keepdim=True)
        y = (centered * torch.rsqrt(variance + self.epsilon)).reshape(x.shape)
        if self.gamma is not None:
            y = y * on_axis(self.gamma, axis, rank)
        if self.beta is not None:
            y = y + on_axis(self.beta, axis, rank)
        return y
