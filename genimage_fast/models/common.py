"""Shared pieces: input normalisation inside the model, and a wrapper for timm backbones."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)  # maps [0, 1] to [-1, 1] (F3Net, AutoGAN's image branch)


class Normalize(nn.Module):
    """(x - mean) / std per channel; constants are non-persistent so checkpoints hold only weights."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("inv_std", 1.0 / torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) * self.inv_std.to(x.dtype)


class NormalizedNet(nn.Module):
    """A classifier `net` fed with normalised [0, 1] images; `head_prefixes` names its classifier."""

    def __init__(self, net: nn.Module, head: str, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net
        self.head_prefixes = (f"net.{head}",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
