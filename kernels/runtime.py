"""Small launch helpers shared by the Triton launchers (importing this does not import Triton)."""

from __future__ import annotations

import contextlib
import os

import torch

MAX_GRID_Z = 65535  # CUDA's limit on gridDim.y and gridDim.z


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU (TRITON_INTERPRET=1, read when triton is imported)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def next_pow2(value: int) -> int:
    """Smallest power of two >= value (Triton block shapes must be powers of two)."""
    return 1 << max(0, (value - 1).bit_length())


def batch_chunks(n: int, limit: int = MAX_GRID_Z) -> list[tuple[int, int]]:
    """[(start, stop)] slices of a batch of n, each at most `limit` samples (one launch each)."""
    return [(a, min(a + limit, n)) for a in range(0, n, limit)]


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """Launch on the tensors' GPU: Triton launches on the *current* device, which for a single
    process on cuda:N (N > 0) is still cuda:0 unless set."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def upload(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor onto device without blocking the host: pinned + non_blocking to CUDA (the
    caching host allocator keeps the pinned buffer alive until the copy is done); as is otherwise."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
