"""Keras's merge layers: element-wise merges with Keras's rank broadcasting and masks,
Concatenate, Dot."""

import torch
from torch import nn


def broadcast_ranks(inputs):
    """Keras's rule for merging tensors of different ranks: the smaller ones get axes of
    size 1 right after the batch axis."""
    rank = max(x.dim() for x in inputs)
    ones = [[1] * (rank - x.dim()) for x in inputs]
    return [x.reshape(x.shape[0], *o, *x.shape[1:]) for x, o in zip(inputs, ones)]


def total(inputs):
    """The inputs added up, left to right, as Keras adds them."""
    out = inputs[0]
    for x in inputs[1:]:
        out = out + x
    return out


class Add(nn.Module):
    """Keras's Add: the element-wise sum of the inputs."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return total(broadcast_ranks(inputs))


class Subtract(nn.Module):
    """Keras's Subtract: the first input minus the second."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = broadcast_ranks((a, b))
        return a - b


class Average(nn.Module):
    """Keras's Average: the sum of the inputs divided by their number."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return total(broadcast_ranks(inputs)) / len(inputs)


class Multiply(nn.Module):
    """Keras's Multiply: the element-wise product. With Keras masks (batch, steps) a
    masked entry counts as 1, and where every input is masked the product is 0."""

    def forward(self, *inputs: torch.Tensor, masks=None) -> torch.Tensor:
        inputs = broadcast_ranks(inputs)
        masks = masks or [None] * len(inputs)
        out = every = None
        for x, mask in zip(inputs, masks):
            if mask is not None:
                x = torch.where(mask[..., None], x, 1.0)
            out = x if out is None else out * x
        if all(m is not None for m in masks):
            for mask in masks:
                every = mask if every is None else every | mask
            out = torch.where(every[..., None], out, 0.0)
        return out


def masked_fold(op, inputs, masks):
    """Keras's element-wise maximum / minimum under masks: a masked entry takes the
    other side's value, so it does not count."""
    masks = masks or [None] * len(inputs)
    out = out_mask = None
    for x, mask in zip(broadcast_ranks(inputs), masks):
        mask = None if mask is None else mask[..., None]
        if out is None:
            out, out_mask = x, mask
            continue
        if mask is not None:
            x = torch.where(mask, x, out)
        if out_mask is not None:
            out = torch.where(out_mask, out, x)
        out_mask = None if mask is None or out_mask is None else out_mask | mask
        out = op(out, x)
    return out


class Maximum(nn.Module):
    """Keras's Maximum: the element-wise maximum (masked entries left out)."""

    def forward(self, *inputs: torch.Tensor, masks=None) -> torch.Tensor:
        return masked_fold(torch.maximum, inputs, masks)


class Minimum(nn.Module):
    """Keras's Minimum: the element-wise minimum (masked entries left out)."""

    def forward(self, *inputs: torch.Tensor, masks=None) -> torch.Tensor:
        return masked_fold(torch.minimum, inputs, masks)


class Concatenate(nn.Module):
    """Keras's Concatenate along `dim` (as the tensors are stored)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)

    def compute_mask(self, inputs, masks):
        """Keras's mask of the result: joined along a middle axis (all true for an input
        without one); the OR of the masks along the last axis, where every input has
        one (None otherwise: all true)."""
        rank = inputs[0].dim()
        if self.dim % rank == rank - 1:
            if any(m is None for m in masks):
                return None
            out = masks[0]
            for mask in masks[1:]:
                out = out | mask
            return out
        parts = [
            torch.ones_like(x[..., 0], dtype=torch.bool) if m is None else m
            for x, m in zip(inputs, masks)
        ]
        return torch.cat(parts, dim=self.dim)


def l2_normalize(x, axis: int):
    """Keras's normalize: x * min(1 / sqrt(sum(x ** 2, axis)), 1 / 1e-7)."""
    norm = x.square().sum(dim=axis, keepdim=True).sqrt()
    return x * torch.clamp(norm.reciprocal(), max=1e7)


class Dot(nn.Module):
    """Keras's Dot: per sample, the dot product of x1 along axes[0] with x2 along
    axes[1] (axes count the batch axis as 0); normalize=True makes it the cosine."""

    def __init__(self, axes: tuple, normalize: bool = False) -> None:
        super().__init__()
        self.axes, self.normalize = axes, normalize

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        a1, a2 = self.axes
        if self.normalize:
            x1, x2 = l2_normalize(x1, a1), l2_normalize(x2, a2)
        letters = iter("bcdefghijklmnopqrstuvwxy")
        s1 = ["a"] + [next(letters) if i != a1 else "z" for i in range(1, x1.dim())]
        s2 = ["a"] + [next(letters) if i != a2 else "z" for i in range(1, x2.dim())]
        out = [c for c in s1 if c != "z"] + [c for c in s2[1:] if c != "z"]
        y = torch.einsum(f"{''.join(s1)},{''.join(s2)}->{''.join(out)}", x1, x2)
        return y[:, None] if y.dim() == 1 else y
