"""Argument checks shared by the degradation ops: every bad argument is one clear ValueError.

No check reads a device tensor's values (that would block the host until the GPU drains):
Python numbers and CPU tensors are checked on the host (numpy reads do not dispatch) and then
uploaded pinned and non-blocking; per-sample values already on a GPU are clamped there instead."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from genimage_fast.kernels.jpeg_constants import QUALITY_MAX, QUALITY_MIN
from genimage_fast.kernels.runtime import interpreting, upload

BACKENDS = ("auto", "torch", "triton")


def check_images(x: object) -> torch.Tensor:
    """x must be a uint8 tensor [N, 3, H, W]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be uint8 [N, 3, H, W], got {x.dtype} {list(x.shape)}")
    return x


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """'auto' -> 'triton' on CUDA, else 'cpu' (the fastest CPU path); 'torch' / 'triton' as asked."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "triton" if x.is_cuda else "cpu"
    if backend == "triton" and not x.is_cuda and not interpreting():
        raise ValueError("backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 to run on the CPU)")
    return backend


def _per_sample(value: object, n: int, what: str) -> torch.Tensor | None:
    """A tensor argument as a flat [N] tensor (a 0-d tensor is broadcast); None for a scalar."""
    if not isinstance(value, torch.Tensor):
        return None
    flat = value.reshape(-1)
    if value.ndim == 0:
        flat = flat.expand(n)
    if flat.numel() != n:
        raise ValueError(f"{what} must be a scalar or have one value per image ({n}), got {list(value.shape)}")
    return flat


def quality_tensor(quality: object, n: int, device: torch.device) -> torch.Tensor:
    """int or int tensor [N] within 1..100 -> int32 [N] on device, without a host sync.

    An int or a CPU tensor is range-checked on the host (ValueError). A tensor already on a GPU
    is not read: its values are clamped to 1..100 on the device."""
    flat = _per_sample(quality, n, "quality")
    if flat is None:
        if isinstance(quality, bool) or not isinstance(quality, int):
            raise ValueError(f"quality must be an int or an int tensor, got {quality!r}")
        _check_quality_values(np.array([quality]))
        return torch.full((n,), quality, dtype=torch.int32, device=device)
    if flat.dtype.is_floating_point or flat.dtype.is_complex or flat.dtype == torch.bool:
        raise ValueError(f"quality tensor must hold integers, got {flat.dtype}")
    if flat.device.type != "cpu":
        return flat.to(device=device, dtype=torch.int32).clamp(QUALITY_MIN, QUALITY_MAX)
    flat = flat.detach().to(torch.int32).contiguous()
    _check_quality_values(flat.numpy())
    return upload(flat, device)


def _check_quality_values(values: np.ndarray) -> None:
    if values.size and (values.min() < QUALITY_MIN or values.max() > QUALITY_MAX):
        raise ValueError(f"quality must be within {QUALITY_MIN}..{QUALITY_MAX}")


def sigma_list(sigma: object, n: int) -> list[float]:
    """float or float tensor [N], each finite and >= 0 -> N Python floats (kernels are built on the
    host: a CUDA sigma tensor is read once, which syncs; pass floats or a CPU tensor to avoid it)."""
    flat = _per_sample(sigma, n, "sigma")
    if flat is None:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
            raise ValueError(f"sigma must be a float or a float tensor, got {sigma!r}")
        values = [float(sigma)] * n
    else:
        values = flat.detach().cpu().double().numpy().tolist()
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError("sigma must be finite and >= 0")
    return values


def check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    return size


def check_probability(p: object, what: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{what} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_quality_range(quality: Sequence[int]) -> tuple[int, int]:
    """(lo, hi) with QUALITY_MIN <= lo <= hi <= QUALITY_MAX."""
    if len(quality) != 2 or not all(isinstance(q, int) and not isinstance(q, bool) for q in quality):
        raise ValueError(f"quality range must be two ints (lo, hi), got {quality!r}")
    lo, hi = quality
    if not QUALITY_MIN <= lo <= hi <= QUALITY_MAX:
        raise ValueError(f"quality range must satisfy {QUALITY_MIN} <= lo <= hi <= {QUALITY_MAX}, got {quality!r}")
    return lo, hi
