"""PyTorch twins of the example models, for benchmarks (no torchvision: written out).

Each mirrors the Keras model ktrans compiles: same layers, same sizes, same activations.
"""

from __future__ import annotations

import torch
from torch import nn


class MnistMLP(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 10), nn.Softmax(dim=-1),
        )  # fmt: skip


class MnistCNN(nn.Module):
    """Keras mnist_cnn; takes NHWC input like the Keras model, converts once."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
            nn.Softmax(dim=-1),
        )  # fmt: skip

    def forward(self, x):
        y = self.body(x.permute(0, 3, 1, 2))
        return self.head(y.permute(0, 2, 3, 1))  # flatten in channels_last order, as Keras


class Bottleneck(nn.Module):
    def __init__(self, cin: int, filters: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        out = 4 * filters
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, out, 1, stride), nn.BatchNorm2d(out, eps=1.001e-5))
            if shortcut
            else None
        )
        self.body = nn.Sequential(
            nn.Conv2d(cin, filters, 1, stride), nn.BatchNorm2d(filters, eps=1.001e-5), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, padding=1), nn.BatchNorm2d(filters, eps=1.001e-5),
            nn.ReLU(),
            nn.Conv2d(filters, out, 1), nn.BatchNorm2d(out, eps=1.001e-5),
        )  # fmt: skip

    def forward(self, x):
        s = self.shortcut(x) if self.shortcut is not None else x
        return torch.relu(self.body(x) + s)


class ResNet50(nn.Module):
    """Keras applications ResNet50 (v1, biased convs), NHWC in, 1000 softmax classes."""

    def __init__(self) -> None:
        super().__init__()
        layers = [
            nn.ZeroPad2d(3), nn.Conv2d(3, 64, 7, 2), nn.BatchNorm2d(64, eps=1.001e-5), nn.ReLU(),
            nn.ZeroPad2d(1), nn.MaxPool2d(3, 2),
        ]  # fmt: skip
        cin = 64
        for filters, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            layers.append(Bottleneck(cin, filters, stride, True))
            cin = 4 * filters
            layers += [Bottleneck(cin, filters, 1, False) for _ in range(blocks - 1)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        y = self.body(x.permute(0, 3, 1, 2)).mean(dim=(2, 3))
        return torch.softmax(self.fc(y), dim=-1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for n, b in model.named_buffers() if "running" in n
    )
