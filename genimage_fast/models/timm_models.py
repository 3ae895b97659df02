"""The timm-based detectors: ResNet-50, DeiT-S, Swin-T (GenImage's timm baselines) and CNNSpot.

They are plain timm architectures built from scratch (`pretrained=False`: nothing is downloaded),
with a 2-class head (CNNSpot: one logit, as CNNDetection `networks/trainer.py` replaces ResNet-50's
fc by `nn.Linear(2048, 1)` and trains with `BCEWithLogitsLoss`). All normalise with ImageNet
statistics inside, as timm's and CNNDetection's data pipelines do.
"""

from __future__ import annotations

from typing import Any

import timm

from genimage_fast.models.common import NormalizedNet
from genimage_fast.models.factory import ModelSpec, register_model


def timm_classifier(arch: str, num_classes: int, **overrides: Any) -> NormalizedNet:
    """A timm model from scratch, wrapped to take [0, 1] input; the head is timm's classifier."""
    net = timm.create_model(arch, pretrained=False, num_classes=num_classes, **overrides)
    head = net.pretrained_cfg.get("classifier", "fc")
    return NormalizedNet(net, head=head)


@register_model(ModelSpec("resnet50", 224, "logits", "jsd_ce", "timm resnet50, 2 classes (GenImage's ResNet-50)"))
def resnet50(num_classes: int = 2, **overrides: Any) -> NormalizedNet:
    return timm_classifier("resnet50", num_classes, **overrides)


@register_model(ModelSpec("deit_s", 224, "logits", "ce", "timm deit_small_patch16_224, 2 classes"))
def deit_s(num_classes: int = 2, **overrides: Any) -> NormalizedNet:
    return timm_classifier("deit_small_patch16_224", num_classes, **overrides)


@register_model(ModelSpec("swin_t", 224, "logits", "ce", "timm swin_tiny_patch4_window7_224, 2 classes"))
def swin_t(num_classes: int = 2, **overrides: Any) -> NormalizedNet:
    return timm_classifier("swin_tiny_patch4_window7_224", num_classes, **overrides)


@register_model(ModelSpec("cnnspot", 224, "logit", "bce", "CNNSpot: ResNet-50 with one logit (CNNDetection)"))
def cnnspot(**overrides: Any) -> NormalizedNet:
    return timm_classifier("resnet50", 1, **overrides)
