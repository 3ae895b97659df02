"""One rule for device names across commands: 'auto', 'cpu', 'cuda' or 'cuda:N'."""

from __future__ import annotations

import torch

from genimage_fast.errors import GenImageError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> the GPU when CUDA is available, else the CPU; a bare 'cuda' -> this rank's GPU.

    CUDA asked for without a GPU, or a name that is not a CPU/CUDA device, is a GenImageError.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise GenImageError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GenImageError(f"device {name!r} asked for, but no CUDA GPU is available (use cpu or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return device
