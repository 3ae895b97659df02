"""AutoGAN's input scaling: torch (any device, inside the `spec` detector's forward) or numba (numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from genimage_fast.spectral import kernels
from genimage_fast.spectral.features import log_spectrum


def _percentile(sorted_rows: torch.Tensor, q: float) -> torch.Tensor:
    """np.percentile's default (linear interpolation) over each row of an ascending-sorted [R, M]."""
    position = q / 100.0 * (sorted_rows.shape[1] - 1)
    low = int(position)
    high = min(low + 1, sorted_rows.shape[1] - 1)
    frac = position - low
    return sorted_rows[:, low] * (1.0 - frac) + sorted_rows[:, high] * frac


def autogan_normalize(spec: Any, low_q: float = 5.0, high_q: float = 95.0) -> Any:
    """Scale each sample's channel so its 5th/95th percentiles map to -1/1, then clip to [-1, 1].

    spec [N, C, H, W] (e.g. log_spectrum output). A torch tensor (any float dtype, any device)
    gives the same dtype back; the percentiles are computed like np.percentile and treated as
    constants (no gradient flows through the sort), so the op is safe inside a model's forward.
    A numpy array (finite values) goes through the numba kernel and gives float32. A flat channel
    (95th == 5th percentile) maps to -1 rather than dividing by zero.
    """
    if spec.ndim != 4:
        raise ValueError(f"autogan_normalize: expected [N, C, H, W], got shape {tuple(spec.shape)}")
    if not 0.0 <= low_q < high_q <= 100.0:
        raise ValueError(f"autogan_normalize: need 0 <= low_q < high_q <= 100, got {low_q}, {high_q}")
    n, c = spec.shape[:2]
    if not isinstance(spec, torch.Tensor):
        planes = np.ascontiguousarray(spec, dtype=np.float32).reshape(n * c, -1)
        out = np.empty(planes.shape, np.float32)
        kernels.autogan_normalize_kernel(planes, float(low_q), float(high_q), out)
        return out.reshape(spec.shape)
    work = spec.float()
    with torch.no_grad():
        rows = torch.sort(work.reshape(n * c, -1), dim=1).values
        low = _percentile(rows, low_q).reshape(n, c, 1, 1)
        high = _percentile(rows, high_q).reshape(n, c, 1, 1)
        span = (high - low).clamp_min(torch.finfo(torch.float32).tiny)
    scaled = (work - low) / span * 2.0 - 1.0
    return scaled.clamp(-1.0, 1.0).to(spec.dtype)


class AutoGANSpectrum(nn.Module):
    """Spec detector input: images float [N, 3, H, W] in [0, 1] -> normalised log spectrum in [-1, 1].

    log(|fft2(x)| + 1e-3) per channel (float32 FFT: the bins where float32 error matters sit far
    below the 5th percentile and are clipped), then autogan_normalize.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return autogan_normalize(log_spectrum(x, exact=False))
