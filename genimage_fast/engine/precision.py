"""Mixed precision by name: autocast dtype per device, a GradScaler only for fp16."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    name: str
    device: torch.device
    scaler: torch.amp.GradScaler | None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward-pass context: autocast to bf16/fp16, or nothing for fp32."""
        dtype = DTYPES[self.name]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, before_step: Callable[[], None] | None = None) -> None:
        """Unscale (fp16), run before_step (e.g. gradient clipping on true gradients), step, update."""
        if self.scaler:
            self.scaler.unscale_(optimizer)
        if before_step:
            before_step()
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)


def build_precision(name: str, device: torch.device) -> Precision:
    """fp16 needs loss scaling against gradient underflow; bf16 has fp32's range and does not."""
    if name not in DTYPES:
        raise ValueError(f"unknown precision {name!r}")
    scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
    return Precision(name=name, device=device, scaler=scaler)
