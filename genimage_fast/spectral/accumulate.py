"""Streaming average of noise residuals: 1,000 images per generator never sit in memory at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genimage_fast.spectral import kernels
from genimage_fast.spectral.features import _median3x3_torch, is_uint8, spectrum_of_mean


class SpectrumAccumulator:
    """Sums noise residuals batch by batch; `result()` is |fft2| of their mean (= average_spectrum).

    The running sum is kept in exact integer levels (x - median3x3(x) is an integer), so the result
    does not depend on how the images were batched. Batches are uint8 [N, C, H, W], numpy or torch;
    a CUDA tensor is reduced on its device and only the [C, H, W] sum crosses to the host.
    """

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None  # int64 [C, H, W], levels
        self.count = 0

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self._sum is None else tuple(self._sum.shape)

    def update(self, batch: Any) -> None:
        """Add a batch uint8 [N, C, H, W]; every batch must have the same C, H, W."""
        if batch.ndim != 4 or not is_uint8(batch):
            raise ValueError(f"SpectrumAccumulator: expected uint8 [N, C, H, W], got {batch.dtype} "
                             f"{tuple(batch.shape)}")
        if self._sum is None:
            self._sum = np.zeros(tuple(batch.shape[1:]), np.int64)
        elif tuple(batch.shape[1:]) != self._sum.shape:
            raise ValueError(f"SpectrumAccumulator: batch of {tuple(batch.shape[1:])} after {self._sum.shape}; "
                             "crop or resize every image to one size first")
        if isinstance(batch, torch.Tensor) and batch.device.type != "cpu":
            diff = batch.to(torch.int32) - _median3x3_torch(batch).to(torch.int32)
            self._sum += diff.sum(dim=0, dtype=torch.int64).cpu().numpy()
        else:
            array = batch.contiguous().numpy() if isinstance(batch, torch.Tensor) else np.ascontiguousarray(batch)
            kernels.median_residual_sum_kernel(array, self._sum)
        self.count += int(batch.shape[0])

    def mean_residual(self) -> np.ndarray:
        """The mean noise residual [C, H, W] float64 (in [0, 1] units, like noise_residual)."""
        if self._sum is None or self.count == 0:
            raise ValueError("SpectrumAccumulator: no images were added")
        return self._sum / (255.0 * self.count)

    def result(self) -> np.ndarray:
        """|fft2(mean residual)| [C, H, W] float32, unshifted (DC at [0, 0])."""
        return spectrum_of_mean(self.mean_residual())
