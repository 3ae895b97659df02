"""Plain torch reference of scipy's separable Gaussian blur, `gaussian_filter(img, (s, s, 0))`.

scipy details reproduced: radius int(4 sigma + 0.5); weights exp(-x^2 / 2 sigma^2) normalised in
float64 exactly as `scipy.ndimage._filters._gaussian_kernel1d`; 'reflect' borders (half-sample
symmetric: d c b a | a b c d | d c b a — torch's 'reflect' is scipy's 'mirror'); rows first, then
columns; the symmetric inner loop `acc = x0*w0; for j = r..1: acc += (x[-j] + x[+j]) * w[j]`.
With `truncate_uint8` each pass is truncated to uint8 as scipy does for uint8 arrays (CNNSpot).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genimage_fast.kernels.runtime import upload

TRUNCATE = 4.0


def gaussian_radius(sigma: float, truncate: float = TRUNCATE) -> int:
    """scipy's kernel radius for a sigma (0 for sigma 0: the pass is the identity)."""
    return int(truncate * float(sigma) + 0.5)


def scipy_weights(sigma: float, truncate: float = TRUNCATE) -> np.ndarray:
    """float64 [r+1]: the centre and one side of scipy's normalised kernel, bit for bit."""
    sigma = float(sigma)
    radius = gaussian_radius(sigma, truncate)
    if radius == 0 or sigma <= 0:
        return np.ones(1, dtype=np.float64)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)  # same expression order as scipy
    phi = phi / phi.sum()
    return phi[radius:]


def weight_table(sigmas: Sequence[float], truncate: float = TRUNCATE) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 [N, R+1] weights zero-padded to the largest radius R, int32 [N] radii) on the CPU."""
    cache: dict[float, np.ndarray] = {}
    for s in map(float, sigmas):  # one weight row per distinct sigma (CNNSpot batches repeat 0.0 often)
        if s not in cache:
            cache[s] = scipy_weights(s, truncate)
    rows = [cache[float(s)] for s in sigmas]
    width = max((len(r) for r in rows), default=1)
    table = np.zeros((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    radii = torch.tensor([len(r) - 1 for r in rows], dtype=torch.int32)
    return torch.from_numpy(table), radii


def reflect_index(index: torch.Tensor, length: int) -> torch.Tensor:
    """Half-sample symmetric index (scipy 'reflect'), valid for any offset."""
    period = 2 * length
    m = torch.remainder(index, period)
    return torch.where(m >= length, period - 1 - m, m)


def _blur_pass(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """One 1-D pass along dim (2 rows, 3 columns) of float x [N,C,H,W] with weights [N, R+1]."""
    radius = weights.shape[1] - 1
    length = x.shape[dim]
    idx = reflect_index(torch.arange(-radius, length + radius, device=x.device), length)
    padded = x.index_select(dim, idx)
    w = weights.to(x.dtype).view(-1, 1, 1, 1, radius + 1)
    acc = x * w[..., 0]
    for j in range(radius, 0, -1):  # scipy's order: farthest pair first
        left = padded.narrow(dim, radius - j, length)
        right = padded.narrow(dim, radius + j, length)
        acc = acc + (left + right) * w[..., j]
    return acc


def gaussian_blur_reference(x: torch.Tensor, weights: torch.Tensor, truncate_uint8: bool = False) -> torch.Tensor:
    """uint8 [N,C,H,W] blurred with per-sample weights [N, R+1] (see `weight_table`) -> uint8.

    Float mode computes in float32 and rounds once at the end (within 1 level of scipy on float
    input); truncate mode computes in float64 and truncates after each pass (scipy on uint8, exact)."""
    dtype = torch.float64 if truncate_uint8 else torch.float32
    weights = upload(weights, x.device)  # pinned + non-blocking: no host sync on CUDA
    acc = x.to(dtype)
    for dim in (2, 3):
        acc = _blur_pass(acc, weights, dim)
        if truncate_uint8:
            acc = torch.floor(acc).clamp(0, 255)
    if not truncate_uint8:
        acc = torch.floor(acc + 0.5).clamp(0, 255)
    return acc.to(torch.uint8)
