"""Spec: the AutoGAN spectrum classifier (Zhang et al., 2019), after ColumbiaDVMM/AutoGAN
`code/GAN_Detection_Train.py` (GenImage-Dataset/GenImage detector_codes/AutoGAN-master/code/).

The original (`--feature fft --model resnet`) feeds a 224 crop's per-channel
`log(|fft2(x / 255)| + 1e-3)`, scaled so its 5th/95th percentiles map to [-1, 1] and clipped, into
torchvision's `resnet34` with `fc = nn.Linear(512, 2)`, trained with cross-entropy. We use the same
ResNet-34 (timm's `resnet34` is the identical architecture) and compute the spectrum inside the
forward on the model's device with `genimage_fast.spectral.AutoGANSpectrum`, in float32 even under
bf16/fp16 autocast (a log spectrum in half precision loses the small bins). No ImageNet
normalisation: the spectrum is already in [-1, 1], as in the original.

Channel order: AutoGAN reads every image with `cv2.imread` (cycleGAN_dataset.py:119, 131, 141,
151), i.e. as B, G, R planes, and its fft branch keeps that order (GAN_Detection_Train.py:208-237:
`for i in range(3): ... im[:, :, i] = fft_img`, then `np.transpose(im, (2, 0, 1))` at :242), so
channel 0 of the network's input is the blue plane's spectrum. With ImageNet init
(GAN_Detection_Train.py:419 `models.resnet34(pretrained=True)`) that decides which conv1 filters see
which plane. Our models take RGB, so the default `channel_order="bgr"` reverses the planes inside the
forward (the spectrum and its scaling are per plane, so this is exactly the original's input);
`channel_order="rgb"` (recipe `model.kwargs`) feeds them as they come.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models.factory import ModelSpec, register_model
from genimage_fast.spectral import AutoGANSpectrum

CHANNEL_ORDERS = ("bgr", "rgb")


class SpecNet(nn.Module):
    def __init__(self, arch: str = "resnet34", num_classes: int = 2, channel_order: str = "bgr",
                 **overrides: Any) -> None:
        super().__init__()
        if channel_order not in CHANNEL_ORDERS:
            raise GenImageError(f"spec: channel_order must be one of {', '.join(CHANNEL_ORDERS)}, "
                                f"got {channel_order!r}")
        self.channel_order = channel_order
        self.spectrum = AutoGANSpectrum()
        self.net = timm.create_model(arch, pretrained=False, num_classes=num_classes, **overrides)
        self.head_prefixes = (f"net.{self.net.pretrained_cfg.get('classifier', 'fc')}",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            s = self.spectrum(x.float())
        if self.channel_order == "bgr":
            s = s.flip(1)  # R, G, B spectra -> B, G, R: cv2.imread's plane order, as AutoGAN fed them
        if x.is_contiguous(memory_format=torch.channels_last):
            s = s.contiguous(memory_format=torch.channels_last)  # keep the caller's memory format
        return self.net(s)


@register_model(ModelSpec("spec", 224, "logits", "ce", "AutoGAN spectrum classifier: ResNet-34 on log |FFT|"))
def spec(**overrides: Any) -> SpecNet:
    return SpecNet(**overrides)
