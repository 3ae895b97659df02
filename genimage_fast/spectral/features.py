"""Spectral features (DESIGN §4.4): AutoGAN log spectra, noise residuals, average and radial spectra.

Every function takes a numpy array or a torch tensor of images [N, C, H, W] (any leading shape
works: the last two axes are the image plane). numpy in -> numpy out through the numba kernels;
torch in -> torch out on the same device (CUDA uses torch ops, a CPU tensor goes through the
kernels without a copy back and forth beyond the dtype change).

Pixel scale: integer inputs are levels 0..255 and are divided by 255; floating inputs are taken
to be in [0, 1] already (the models' input convention), so `log_spectrum(x)` and
`log_spectrum(x / 255.0)` agree.

Denoiser: a 3x3 median filter, so the noise residual is `(x - median3x3(x)) / 255`. CNNSpot
(Wang et al., 2020), which the paper follows for Figure 2, visualises the spectra of images minus
their median-filtered version; the median is edge-preserving, so the residual keeps little scene
content (edges) and the generator's pixel-level traces (upsampling grids, checkerboards) survive,
while a linear low-pass (local mean) would leak every edge into the residual. It also needs no
learned weights (Corvi et al. use a learned denoiser, which we cannot download here). Borders
repeat the edge pixel, which equals scipy.ndimage.median_filter's default mode 'reflect' for a
3x3 window.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from genimage_fast.spectral import kernels

ArrayLike = Any  # np.ndarray | torch.Tensor


def _fft_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _check_images(x: ArrayLike, name: str) -> None:
    if x.ndim < 2 or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"{name}: expected images [..., H, W], got shape {tuple(x.shape)}")


def _is_integer(x: ArrayLike) -> bool:
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex())
    return np.issubdtype(x.dtype, np.integer)


# --- log spectrum (AutoGAN input) -----------------------------------------------------------------


def log_spectrum(x: ArrayLike, exact: bool = True) -> ArrayLike:
    """Per channel log(|fft2(x / 255)| + 1e-3) as float32, same shape as x (unshifted: DC at [0, 0]).

    exact=True computes the FFT in float64 so the result matches the formula within 1e-4 even
    where |F| is near 0 (log amplifies absolute FFT error by 1/1e-3 there); exact=False uses
    float32, fine for model inputs whose percentile scaling clips those bins anyway.
    """
    _check_images(x, "log_spectrum")
    scale = 1.0 / 255.0 if _is_integer(x) else 1.0
    if isinstance(x, torch.Tensor):
        dtype = torch.float64 if exact else torch.float32
        spectrum = torch.fft.fft2(x.to(dtype))
        return torch.log(spectrum.abs() * scale + kernels.LOG_EPS).to(torch.float32)
    height, width = x.shape[-2:]
    planes = np.asarray(x, dtype=np.float64 if exact else np.float32).reshape(-1, height, width)
    half = scipy.fft.rfft2(planes, workers=_fft_workers())
    out = np.empty(planes.shape, np.float32)
    kernels.log_magnitude_kernel(half, scale, out)
    return out.reshape(x.shape)


def log_spectrum_reference(x: np.ndarray) -> np.ndarray:
    """The formula in plain numpy (float64 FFT): what AutoGAN computes per image."""
    scale = 1.0 / 255.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    return np.log(np.abs(np.fft.fft2(x.astype(np.float64) * scale)) + kernels.LOG_EPS).astype(np.float32)


# --- noise residual ---------------------------------------------------------------------------------


def is_uint8(x: ArrayLike) -> bool:
    """True for a uint8 numpy array or torch tensor."""
    return x.dtype == torch.uint8 if isinstance(x, torch.Tensor) else x.dtype == np.uint8


def _require_uint8(x: ArrayLike, name: str) -> None:
    if not is_uint8(x):
        raise ValueError(f"{name}: expected uint8 images (levels 0..255), got {x.dtype}")


def _median3x3_torch(x: torch.Tensor) -> torch.Tensor:
    """3x3 median per plane in torch (edge-replicated borders), for tensors on an accelerator."""
    height, width = x.shape[-2:]
    planes = x.reshape(-1, 1, height, width).float()  # replicate padding needs a float tensor
    padded = F.pad(planes, (1, 1, 1, 1), mode="replicate")
    windows = padded.unfold(2, 3, 1).unfold(3, 3, 1).reshape(-1, 1, height, width, 9)
    return windows.median(dim=-1).values.reshape(x.shape)


def _residual_torch(x: torch.Tensor) -> torch.Tensor:
    return (x.float() - _median3x3_torch(x)) / 255.0


def noise_residual(x: ArrayLike) -> ArrayLike:
    """(x - median3x3(x)) / 255 as float32 [..., H, W]; x uint8 levels."""
    _check_images(x, "noise_residual")
    _require_uint8(x, "noise_residual")
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            return _residual_torch(x)
        return torch.from_numpy(noise_residual(x.contiguous().numpy()))
    height, width = x.shape[-2:]
    planes = np.ascontiguousarray(x).reshape(-1, 1, height, width)
    out = np.empty(planes.shape, np.float32)
    kernels.median_residual_kernel(planes, out)
    return out.reshape(x.shape)


# --- average spectrum -------------------------------------------------------------------------------


def spectrum_of_mean(mean_residual: ArrayLike) -> ArrayLike:
    """|fft2| of a mean residual [C, H, W] as float32 (unshifted)."""
    if isinstance(mean_residual, torch.Tensor):
        return torch.fft.fft2(mean_residual.to(torch.float64)).abs().to(torch.float32)
    return np.abs(scipy.fft.fft2(np.asarray(mean_residual, np.float64), workers=_fft_workers())).astype(np.float32)


def average_spectrum(x: ArrayLike) -> ArrayLike:
    """|fft2| of the mean noise residual over the batch, [C, H, W] float32 (the paper's Figure 2).

    x uint8 [N, C, H, W]. The whole batch is in memory here; `SpectrumAccumulator` streams.
    """
    _check_images(x, "average_spectrum")
    if x.ndim != 4:
        raise ValueError(f"average_spectrum: expected [N, C, H, W], got shape {tuple(x.shape)}")
    residual = noise_residual(x)
    if isinstance(residual, torch.Tensor):
        return spectrum_of_mean(residual.to(torch.float64).mean(dim=0))
    return spectrum_of_mean(residual.mean(axis=0, dtype=np.float64))


# --- radial profile ---------------------------------------------------------------------------------


def radial_bins(height: int, width: int, centered: bool = False) -> tuple[np.ndarray, int]:
    """(bins int32 [H, W], n_bins): each frequency's radius in units of 1 / min(H, W) cycles/pixel.

    Radii past the Nyquist frequency of the shorter side (the spectrum's corners, only partly
    covered by any circle) get bin -1 and are left out.
    """
    side = min(height, width)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fy * fy + fx * fx) * side
    n_bins = side // 2 + 1
    bins = np.rint(radius).astype(np.int32)
    bins[bins >= n_bins] = -1
    if centered:
        bins = np.fft.fftshift(bins)
    return np.ascontiguousarray(bins), n_bins


def radial_frequencies(height: int, width: int) -> np.ndarray:
    """The frequency (cycles/pixel, 0..0.5) of each radial_profile bin for an H x W spectrum."""
    side = min(height, width)
    return np.arange(side // 2 + 1) / side


def radial_profiles(spectra: np.ndarray, centered: bool = False) -> np.ndarray:
    """Azimuthal averages of every plane: [..., H, W] -> [..., n_bins] float64 (numba kernel)."""
    spectra = np.asarray(spectra)
    height, width = spectra.shape[-2:]
    bins, n_bins = radial_bins(height, width, centered)
    planes = np.ascontiguousarray(spectra, dtype=np.float64).reshape(-1, height, width)
    sums = np.empty((planes.shape[0], n_bins), np.float64)
    kernels.radial_sum_kernel(planes, bins, n_bins, sums)
    counts = np.bincount(bins[bins >= 0], minlength=n_bins)
    return (sums / counts).reshape(spectra.shape[:-2] + (n_bins,))


def radial_profile(s: ArrayLike, centered: bool = False) -> np.ndarray:
    """1-D azimuthal average of a spectrum [H, W] (a [C, H, W] spectrum is averaged over C first).

    Bin i is the frequency i / min(H, W) cycles/pixel (see radial_frequencies); pass centered=True
    for an fftshift-ed spectrum.
    """
    return radial_profiles(spectrum_plane(s, "radial_profile"), centered)


def spectrum_plane(s: ArrayLike, caller: str) -> np.ndarray:
    """A spectrum [H, W] or [C, H, W] (numpy or torch) as one float64 [H, W] plane (channel mean)."""
    if isinstance(s, torch.Tensor):
        s = s.detach().cpu().numpy()
    s = np.asarray(s, np.float64)
    if s.ndim == 3:
        s = s.mean(axis=0)
    if s.ndim != 2:
        raise ValueError(f"{caller}: expected a spectrum [H, W] or [C, H, W], got shape {s.shape}")
    return s
