"""Model EMA (DeiT main.py: timm ModelEma, decay 0.99996, updated after every optimizer step).

ema = decay · ema + (1 - decay) · model over every floating state-dict entry (parameters and
buffers, as timm's ModelEma / ModelEmaV2 walk the state dict), as fused `_foreach` ops on the
device (no host sync); integer buffers (BatchNorm's num_batches_tracked) are copied. The copy is
taken when training starts (timm: a deepcopy of the freshly built model), is validated beside the
model and goes into the checkpoint.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """An exponential moving average of a model's state, kept in a frozen copy of the model."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._cache: tuple[nn.Module, tuple[list[torch.Tensor], ...]] | None = None

    def _entries(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor],
                                                   list[torch.Tensor]]:
        ema_sd, src_sd = self.module.state_dict(), model.state_dict()
        if ema_sd.keys() != src_sd.keys():
            raise ValueError("EMA: the model's state-dict keys differ from the EMA copy's")
        fe, fs, ie, is_ = [], [], [], []
        for key, e in ema_sd.items():
            s = src_sd[key].detach()
            (fe if e.is_floating_point() else ie).append(e)
            (fs if e.is_floating_point() else is_).append(s)
        return fe, fs, ie, is_

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards `model` (the plain module, not a DDP/compile wrapper)."""
        if self._cache is None or self._cache[0] is not model:  # state-dict tensors alias the live ones
            self._cache = (model, self._entries(model))
        fe, fs, ie, is_ = self._cache[1]
        if fe:  # decay·ema + (1 - decay)·model, rounded as timm's ModelEmaV2 writes it
            torch._foreach_mul_(fe, self.decay)
            torch._foreach_add_(fe, torch._foreach_mul([s.to(e.dtype) for e, s in zip(fe, fs, strict=True)],
                                                       1.0 - self.decay))
        for e, s in zip(ie, is_, strict=True):
            e.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)  # copies in place: the cached tensors stay valid
