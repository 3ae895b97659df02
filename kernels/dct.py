"""The orthonormal DCT-II matrix, shared by the JPEG kernels (8 points) and F3Net's FAD/LFS stages."""

from __future__ import annotations

import math

import torch


def dct_matrix(size: int = 8, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """D [size, size] with D @ x the orthonormal DCT-II of x along its first axis (scipy's
    `dct(x, type=2, norm="ortho", axis=0)`); JPEG's 2-D block DCT is D @ block @ D.T with size 8."""
    i = torch.arange(size, dtype=torch.float64, device=device).unsqueeze(1)
    j = torch.arange(size, dtype=torch.float64, device=device).unsqueeze(0)
    scale = torch.full((size, 1), math.sqrt(2.0 / size), dtype=torch.float64, device=device)
    scale[0] = math.sqrt(1.0 / size)
    return (scale * torch.cos((j + 0.5) * math.pi * i / size)).to(dtype)
