"""GramNet (Liu et al., CVPR 2020, "Global Texture Enhancement for Fake Face Detection in the Wild"),
after liuzhengzhe/Global_Texture_Enhancement_for_Fake_Face_Detection_in_the-Wild
`stylegan-celeba/resnet18_gram.py` and `stylegan-ffhq/main.py`.

A ResNet-18 plus six Gram-matrix texture branches, tapping the input, conv1 (after BN + ReLU), the
max-pool output and layer1-3. Each branch: 3x3 conv -> 32 channels, BN, ReLU; Gram matrix
divided by C·H·W as [N, 1, 32, 32]; two 3x3 stride-2 convs (1 -> 16 -> 32) with BN + ReLU; global
average pool -> 32 features. All six are multiplied by one shared learnable scale (the original's
`ScaleLayer`) and concatenated with ResNet-18's 512 pooled features (704); head
Linear(704, 512), ReLU, Dropout(0.5), Linear(512, 2), LogSoftmax, trained with NLL. Convolutions use
the original's Kaiming (fan_out) initialisation.

Input (GenImage-Dataset/GenImage detector_codes/Global_Texture_Enhancement_for_Fake_Face_Detection_in_
the-Wild-master/stylegan-ffhq/): the original feeds cv2's B, G, R planes as raw 0..255 floats, with
no scaling or normalisation, into the network, the input Gram branch included: main.py:40-47
(`im = cv2.imread(path)`, `ims[c] = im[:, :, c]`, `torch.tensor(ims.astype('float32'))`; its
`preprocess` with ImageNet `normalize` at :23-32 is never applied: `data_transforms=None`, :76-78) and
test4.py:54-62 alike; resnet18_gram.py:280-282 has no normalisation in the forward. So the default
`pixels="bgr255"` turns our [0, 1] RGB input into exactly that: planes reversed, times 255.
`pixels="imagenet"` (recipe `model.kwargs`) is the earlier RGB + ImageNet-statistics input instead.
The original's size is 512 (main.py:42, test4.py:57): ModelSpec.input_size and recipes/gramnet.yaml.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models.common import Normalize
from genimage_fast.models.factory import ModelSpec, register_model

PIXEL_CONVENTIONS = ("bgr255", "imagenet")


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 1, C, C]: F·Fᵀ / (C·H·W), computed in float32 (sums over H·W terms).

    Autocast is off around the product: under bf16 autocast `bmm` would cast float32 inputs down to
    bf16 (8-bit mantissa) and return bf16. Inputs in float64 stay float64 (references)."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    f = f if f.dtype == torch.float64 else f.float()
    with torch.autocast(x.device.type, enabled=False):
        return (torch.bmm(f, f.transpose(1, 2)) / (c * h * w)).unsqueeze(1)


class BGR255(nn.Module):
    """[0, 1] RGB -> the original's input: B, G, R planes in 0..255 (cv2.imread's array as float)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * 255.0


class GramBranch(nn.Module):
    """Texture branch: conv->32, Gram, two stride-2 convs (1->16->32), global average pool -> [N, 32]."""

    def __init__(self, c_in: int, width: int = 32) -> None:
        super().__init__()
        self.reduce = conv_bn_relu(c_in, width, 1)
        self.fc1 = conv_bn_relu(1, 16, 2)
        self.fc2 = conv_bn_relu(16, width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = gram_matrix(self.reduce(x)).to(x.dtype)
        return self.fc2(self.fc1(g)).mean(dim=(2, 3))


class GramNet(nn.Module):
    taps = ("input", "conv1", "maxpool", "layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 2, dropout: float = 0.5, pixels: str = "bgr255") -> None:
        super().__init__()
        if pixels not in PIXEL_CONVENTIONS:
            raise GenImageError(f"gramnet: pixels must be one of {', '.join(PIXEL_CONVENTIONS)}, got {pixels!r}")
        self.pixels = pixels
        self.normalize = BGR255() if pixels == "bgr255" else Normalize()
        self.body = timm.create_model("resnet18", pretrained=False, num_classes=0)
        channels = {"input": 3, "conv1": 64, "maxpool": 64, "layer1": 64, "layer2": 128, "layer3": 256}
        self.branches = nn.ModuleDict({t: GramBranch(channels[t]) for t in self.taps})
        self.scale = nn.Parameter(torch.ones(1))
        self.head = nn.Sequential(nn.Linear(512 + 32 * len(self.taps), 512), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(512, num_classes), nn.LogSoftmax(dim=1))
        self.head_prefixes = ("head",)
        for m in self.branches.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.body
        feats = {"input": self.normalize(x)}
        feats["conv1"] = b.act1(b.bn1(b.conv1(feats["input"])))
        feats["maxpool"] = b.maxpool(feats["conv1"])
        feats["layer1"] = b.layer1(feats["maxpool"])
        feats["layer2"] = b.layer2(feats["layer1"])
        feats["layer3"] = b.layer3(feats["layer2"])
        pooled = b.layer4(feats["layer3"]).mean(dim=(2, 3))
        textures = [self.branches[t](feats[t]) * self.scale for t in self.taps]
        return self.head(torch.cat([pooled, *textures], dim=1))


@register_model(ModelSpec("gramnet", 512, "log_probs", "nll", "GramNet: ResNet-18 + 6 Gram texture branches"))
def gramnet(**overrides: Any) -> GramNet:
    return GramNet(**overrides)
