"""Measures on average spectra: how strongly a periodic (grid) artifact stands out of the spectrum."""

from __future__ import annotations

from typing import Any

import numpy as np

from genimage_fast.spectral.features import spectrum_plane


def periodic_frequencies(height: int, width: int, period: int) -> list[tuple[int, int]]:
    """The unshifted FFT bins of a pattern with this period along rows and/or columns, DC excluded.

    Period 2 gives the Nyquist bins (H/2, 0), (0, W/2), (H/2, W/2): a checkerboard or stripes with
    a 2-pixel period, the trace of 2x upsampling / transposed convolution.
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    rows = sorted({round(k * height / period) % height for k in range(period)})
    cols = sorted({round(k * width / period) % width for k in range(period)})
    return [(u, v) for u in rows for v in cols if (u, v) != (0, 0)]


def periodic_peak_score(spectrum: Any, period: int = 2) -> float:
    """Mean magnitude at the period's grid frequencies over the spectrum's median (channel mean).

    ~1 for a spectrum without that periodic pattern (its bins look like any other), large when
    the average residual carries a fixed-phase grid. spectrum: [H, W] or [C, H, W], unshifted.
    """
    s = spectrum_plane(spectrum, "periodic_peak_score")
    bins = periodic_frequencies(*s.shape, period)
    median = float(np.median(s))
    peak = float(np.mean([s[u, v] for u, v in bins]))
    return peak / median if median > 0 else float("inf") if peak > 0 else 1.0
