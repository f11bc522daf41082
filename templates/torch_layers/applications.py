"""The layers keras.applications defines for its own models: ConvNeXt's LayerScale and
InceptionResNetV2's CustomScaleLayer."""

import torch
from torch import nn

from .normalization import on_axis


class LayerScale(nn.Module):
    """ConvNeXt's LayerScale: x * gamma along the channels (Keras's last axis, which x
    stores at `axis`), gamma starting at init_values."""

    def __init__(self, init_values: float, projection_dim: int, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis
        self.gamma = nn.Parameter(torch.full((projection_dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.axis == -1:
            return x * self.gamma
        return x * on_axis(self.gamma, self.axis, x.dim())


class CustomScaleLayer(nn.Module):
    """InceptionResNetV2's residual scaling: shortcut + residual * scale."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, shortcut: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return shortcut + residual * self.scale
