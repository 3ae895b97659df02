"""Spec: the AutoGAN spectrum classifier (Zhang et al., 2019), after ColumbiaDVMM/AutoGAN
`code/GAN_Detection_Train.py`.

The original (`--feature fft --model resnet`) feeds a 224 crop's per-channel
`log(|fft2(x / 255)| + 1e-3)`, scaled so its 5th/95th percentiles map to [-1, 1] and clipped, into
torchvision's `resnet34` with `fc = nn.Linear(512, 2)`, trained with cross-entropy. We use the same
ResNet-34 (timm's `resnet34` is the identical architecture) and compute the spectrum inside the
forward on the model's device with `genimage_fast.spectral.AutoGANSpectrum`, in float32 even under
bf16/fp16 autocast (a log spectrum in half precision loses the small bins). No ImageNet
normalisation: the spectrum is already in [-1, 1], as in the original.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from genimage_fast.models.factory import ModelSpec, register_model
from genimage_fast.spectral import AutoGANSpectrum


class SpecNet(nn.Module):
    def __init__(self, arch: str = "resnet34", num_classes: int = 2, **overrides: Any) -> None:
        super().__init__()
        self.spectrum = AutoGANSpectrum()
        self.net = timm.create_model(arch, pretrained=False, num_classes=num_classes, **overrides)
        self.head_prefixes = (f"net.{self.net.pretrained_cfg.get('classifier', 'fc')}",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            s = self.spectrum(x.float())
        if x.is_contiguous(memory_format=torch.channels_last):
            s = s.contiguous(memory_format=torch.channels_last)  # keep the caller's memory format
        return self.net(s)


@register_model(ModelSpec("spec", 224, "logits", "ce", "AutoGAN spectrum classifier: ResNet-34 on log |FFT|"))
def spec(**overrides: Any) -> SpecNet:
    return SpecNet(**overrides)
