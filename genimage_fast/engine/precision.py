"""Mixed precision by name: autocast dtype per device, a GradScaler only for fp16; where TF32 is allowed.

TF32 (a 10-bit mantissa inside fp32 matmuls on NVIDIA GPUs) is only asked for in fp32 training runs:
`configure_matmul_precision` sets "high" there and "highest" (true fp32) otherwise, since bf16/fp16
runs do their bulk matmuls in half precision anyway and their deliberate fp32 islands (F3Net's DCT
heads, GramNet's Gram matrix, the torch JPEG reference) must stay fp32. `float32_matmul(p)` scopes
the setting to a block."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def configure_matmul_precision(precision: str, device: torch.device) -> str | None:
    """Process-wide fp32 matmul precision for a training run on `device`: "high" (TF32) for fp32 runs
    on CUDA, "highest" for bf16/fp16 runs on CUDA; the CPU is left alone. Returns what was set."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}")
    if device.type != "cuda":
        return None
    value = "high" if precision == "fp32" else "highest"
    torch.set_float32_matmul_precision(value)
    return value


@contextlib.contextmanager
def float32_matmul(precision: str = "highest") -> Iterator[None]:
    """torch.set_float32_matmul_precision(precision) inside the block only (eager code)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


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
