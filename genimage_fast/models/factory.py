"""The model registry: `create_model(name, pretrained=None, **overrides)`, timm's pattern.

Each detector registers a factory together with a `ModelSpec` (input size, output kind, default
loss). Every model takes float images in [0, 1], [N, 3, H, W], and normalises inside itself, so the
loaders, the augmentations and the evaluation never need to know a detector's input statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.registry import Registry

OutputKind = Literal["logits", "logit", "log_probs"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_size: int  # the side the original trained at (square)
    output: OutputKind  # logits: [N, 2]; logit: [N, 1] for BCE; log_probs: [N, 2] log-softmax (NLL)
    default_loss: str  # a genimage_fast.engine.losses registry name
    description: str


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    factory: Callable[..., nn.Module]


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(spec: ModelSpec) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register `factory(**overrides) -> nn.Module` under `spec.name`."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(spec.name, ModelEntry(spec, factory))
        return factory

    return add


def list_models() -> list[str]:
    return MODELS.names()


def get_model_spec(name: str) -> ModelSpec:
    return MODELS.get(name).spec


def create_model(name: str, pretrained: str | None = None, **overrides: Any) -> nn.Module:
    """Build a registered detector; `pretrained` names a local checkpoint file (nothing is downloaded).

    The file (timm / torchvision / Cadene-Xception state dict, or a detector checkpoint) is mapped onto
    the detector by `genimage_fast.models.pretrained`, strictly: every tensor is loaded, or belongs to
    a part kept at its fresh init on purpose (heads), or the load fails with one line naming it.
    """
    entry = MODELS.get(name)
    try:
        model = entry.factory(**overrides)
    except TypeError as exc:
        raise GenImageError(f"model {name!r}: bad option ({exc})") from None
    if pretrained:
        load_pretrained(model, pretrained, name)
    return model


def load_pretrained(model: nn.Module, path: str | Path, name: str | None = None) -> Any:
    """Load a local checkpoint into `model` strictly (see genimage_fast.models.pretrained); returns its
    PretrainedInfo (path, sha256, format, what was loaded and what stays fresh)."""
    from genimage_fast.models.pretrained import load_pretrained as load

    return load(model, path, name)


def fake_probability(output: torch.Tensor, kind: OutputKind | str) -> torch.Tensor:
    """Probability of "fake" (label 1), float32 [N], from a model output of the given kind."""
    out = output.float()
    if kind == "logits":
        return out.softmax(dim=1)[:, 1]
    if kind == "logit":
        return out.reshape(out.shape[0], -1)[:, 0].sigmoid()
    if kind == "log_probs":
        return out[:, 1].exp()
    raise GenImageError(f"unknown model output kind {kind!r}; choose from: logits, logit, log_probs")
