"""`Degrade(spec)`: a degradation as an nn.Module, so loaders and training can put it in a pipeline."""

from __future__ import annotations

import torch
from torch import nn

from genimage_fast.degrade.spec import apply, parse_spec
from genimage_fast.degrade.validate import BACKENDS


class Degrade(nn.Module):
    """uint8 [N, 3, H, W] -> degraded uint8 by a spec such as 'jpeg:30' (checked at construction)."""

    def __init__(self, spec: str = "none", backend: str = "auto") -> None:
        super().__init__()
        parse_spec(spec)
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")
        self.spec = spec.strip()
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply(x, self.spec, backend=self.backend)

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, backend={self.backend!r}"
