"""demo_cnn: a ~100k-parameter CNN for the CPU demo (`recipes/demo.yaml`), not a paper detector.

Four 3x3 conv + BN + ReLU stages (the first at full resolution so pixel-level generator traces such
as upsampling grids survive, then three stride-2 stages), global average and max pooling, a linear
2-class head. Works at any input from ~32 px; meant for 64-112 px.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genimage_fast.models.common import Normalize
from genimage_fast.models.factory import ModelSpec, register_model


class DemoCNN(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), num_classes: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.normalize = Normalize()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, 1 if i == 0 else 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        # Optional dropout before the head (off in the demo recipe): exercises exact resume of RNG use.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(2 * c_in, num_classes)
        self.head_prefixes = ("fc",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.normalize(x))
        return self.fc(self.dropout(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)))


@register_model(ModelSpec("demo_cnn", 96, "logits", "ce", "small CNN (~100k parameters) for the CPU demo"))
def demo_cnn(widths: list[int] | tuple[int, ...] = (16, 32, 64, 96), **overrides: Any) -> DemoCNN:
    return DemoCNN(tuple(widths), **overrides)
