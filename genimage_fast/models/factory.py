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
    """Build a registered detector; `pretrained` names a local state-dict file (nothing is downloaded).

    Loading is strict on names and shapes except for the classifier head (the model's `head_prefixes`),
    whose mismatching or missing entries are left at their fresh initialisation, so an ImageNet
    checkpoint with a 1000-way head can start a 2-class detector.
    """
    entry = MODELS.get(name)
    try:
        model = entry.factory(**overrides)
    except TypeError as exc:
        raise GenImageError(f"model {name!r}: bad option ({exc})") from None
    if pretrained:
        load_pretrained(model, pretrained)
    return model


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict, or our checkpoint ({"model": ...}) / common {"state_dict": ...} wrappers."""
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GenImageError(f"pretrained file {path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """Load a local state dict into `model` (see create_model for the strictness rules)."""
    path = Path(path)
    if not path.is_file():
        raise GenImageError(f"pretrained file not found: {path}")
    try:
        state = _unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True), path)
    except (RuntimeError, OSError, EOFError) as exc:
        raise GenImageError(f"pretrained file {path}: cannot be read ({str(exc).splitlines()[0]})") from None
    own = model.state_dict()
    # A bare backbone checkpoint (timm/torchvision keys) goes into the wrapped network `net`.
    if not any(k in own for k in state) and hasattr(model, "net"):
        state = {f"net.{k}": v for k, v in state.items()}
    heads = tuple(getattr(model, "head_prefixes", ()))

    def is_head(key: str) -> bool:
        return any(key == h or key.startswith(h + ".") for h in heads)

    unexpected = [k for k in state if k not in own and not is_head(k)]
    missing = [k for k in own if k not in state and not is_head(k)]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape and not is_head(k)]
    if unexpected or missing or wrong:
        parts = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("unexpected", unexpected), ("missing", missing), ("wrong shape", wrong)) if keys]
        raise GenImageError(f"pretrained file {path} does not fit this model ({'; '.join(parts)})")
    usable = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(usable, strict=False)


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
