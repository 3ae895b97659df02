"""NPR (Tan et al., CVPR 2024): a truncated ResNet-50 on neighbouring-pixel relationships.

As chuangchuangtan/NPR-DeepfakeDetection's networks/resnet.py builds it: the input (ImageNet-normalised,
data/datasets.py) minus its nearest-neighbour down-by-2-then-up-by-2 copy (`NPR = x - interpolate(x,
0.5)`), scaled by 2/3, into a 3x3 stride-2 stem, max-pool, the first two Bottleneck stages of
ResNet-50 (3 and 4 blocks, 512 channels out), global average pool and one linear logit (`fc1`,
Linear(512, 1); BCEWithLogitsLoss in networks/trainer.py). The trainer also attaches a
`fc = Linear(2048, 1)` that forward never uses; it is left out here (2,049 parameters fewer).
Blocks are torchvision's Bottleneck (stride on the 3x3 conv, as NPR's copy of it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, conv1x1

from genimage_fast.models.common import Normalize
from genimage_fast.models.factory import ModelSpec, register_model

NPR_SCALE = 2.0 / 3.0  # networks/resnet.py: self.conv1(NPR*2.0/3.0)


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """x minus its nearest down-by-2 / up-by-2 copy (NPR's `interpolate(img, 0.5)`)."""
    down = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
    return x - F.interpolate(down, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)


class NPRNet(nn.Module):
    """[N,3,H,W] floats in [0, 1] (H, W even) -> one logit [N, 1]."""

    head_prefixes = ("fc1",)

    def __init__(self, layers: tuple[int, int] = (3, 4), num_classes: int = 1) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(128 * Bottleneck.expansion, num_classes)
        for m in self.modules():  # networks/resnet.py's init (fc1 keeps nn.Linear's default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * Bottleneck.expansion, stride),
                                       nn.BatchNorm2d(planes * Bottleneck.expansion))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(npr_residual(self.normalize(x)) * NPR_SCALE)
        x = self.maxpool(self.relu(self.bn1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc1(torch.flatten(self.avgpool(x), 1))


@register_model(ModelSpec("npr", 224, "logit", "bce",
                          "NPR (Tan et al., CVPR 2024): ResNet-50 stages 1-2 on x - up(down(x)), 1 logit"))
def npr(**overrides) -> nn.Module:
    return NPRNet(**overrides)
