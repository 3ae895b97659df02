"""Spectral features against independent references: numpy FFT, scipy.ndimage, np.percentile."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from genimage_fast import spectral
from genimage_fast.spectral import kernels
from genimage_fast.spectral.features import _residual_torch
from tests.conftest import requires_cuda


def _images(shape: tuple[int, ...], seed: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape, dtype=np.uint8)


def _formula(x: np.ndarray) -> np.ndarray:
    """AutoGAN's per-channel formula, written independently of the package."""
    return np.log(np.abs(np.fft.fft2(x.astype(np.float64) / 255.0, axes=(-2, -1))) + 1e-3)


def _scipy_residual(x: np.ndarray) -> np.ndarray:
    median = ndi.median_filter(x, size=(1,) * (x.ndim - 2) + (3, 3), mode="reflect")
    return (x.astype(np.float64) - median) / 255.0


# --- log_spectrum --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 15, 22), (2, 3, 9, 8)])
def test_log_spectrum_matches_formula(shape):
    x = _images(shape)
    x[0, 0] = 17  # a flat channel: every non-DC bin is 0, where log(|F| + 1e-3) is most sensitive
    out = spectral.log_spectrum(x)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, _formula(x), atol=1e-3, rtol=0)


def test_log_spectrum_torch_in_torch_out_and_float_scale():
    x = _images((2, 3, 12, 10), seed=1)
    expected = _formula(x)
    out = spectral.log_spectrum(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-3, rtol=0)
    # floating input is already in [0, 1] (the models' convention)
    np.testing.assert_allclose(spectral.log_spectrum(x.astype(np.float64) / 255.0), expected, atol=1e-3, rtol=0)
    fast = spectral.log_spectrum(torch.from_numpy(x).float() / 255.0, exact=False)
    np.testing.assert_allclose(fast.numpy(), expected, atol=1e-2, rtol=0)


def test_log_magnitude_kernel_python_form_and_numba_agree():
    x = _images((2, 6, 7), seed=2).astype(np.float64)
    import scipy.fft

    half = scipy.fft.rfft2(x)
    reference = kernels.log_magnitude_reference(np.fft.fft2(x), 0.5)
    for kernel in (kernels.log_magnitude_kernel.py_func, kernels.log_magnitude_kernel):
        out = np.empty(x.shape, np.float32)
        kernel(half, 0.5, out)
        np.testing.assert_allclose(out, reference, atol=1e-5, rtol=0)


def test_vectorised_log_matches_numpy_over_the_spectrum_range():
    values = np.logspace(-3, 7, 2001, dtype=np.float64).astype(np.float32)  # 1e-3 (= eps) .. huge DC bins
    expected = np.log(values.astype(np.float64))
    for log_inplace in (kernels._log_inplace.py_func, kernels._log_inplace):
        buf = values.copy()
        log_inplace(buf, buf.view(np.int32))
        np.testing.assert_allclose(buf, expected, atol=2e-6, rtol=0)


# --- noise residual (3x3 median) -----------------------------------------------------------------


@pytest.mark.parametrize("high", [4, 256])  # few levels -> many ties in the median network
def test_noise_residual_matches_scipy_median(high):
    x = _images((3, 3, 17, 20), seed=3, high=high)
    out = spectral.noise_residual(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, _scipy_residual(x), atol=1e-6, rtol=0)


def test_median_kernels_python_form_numba_and_numpy_reference_agree():
    x = _images((2, 2, 5, 6), seed=4)
    expected = _scipy_residual(x)
    np.testing.assert_allclose(kernels.median_residual_reference(x), expected, atol=1e-6)
    for kernel in (kernels.median_residual_kernel.py_func, kernels.median_residual_kernel):
        out = np.empty(x.shape, np.float32)
        kernel(x, out)
        np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)
    for kernel in (kernels.median_residual_sum_kernel.py_func, kernels.median_residual_sum_kernel):
        acc = np.zeros(x.shape[1:], np.int64)
        kernel(x, acc)
        np.testing.assert_allclose(acc, np.rint(expected.sum(axis=0) * 255.0), atol=0)


def test_torch_median_path_matches_scipy():
    # the path CUDA tensors take, checked here on the CPU
    x = _images((2, 3, 9, 11), seed=5)
    np.testing.assert_allclose(_residual_torch(torch.from_numpy(x)).numpy(), _scipy_residual(x), atol=1e-6)
    out = spectral.noise_residual(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), _scipy_residual(x), atol=1e-6)


def test_noise_residual_rejects_float_input():
    with pytest.raises(ValueError, match="uint8"):
        spectral.noise_residual(np.zeros((1, 3, 4, 4), np.float32))


# --- average spectrum and streaming ----------------------------------------------------------------


def test_average_spectrum_is_fft_of_mean_residual():
    x = _images((5, 3, 12, 14), seed=6)
    expected = np.abs(np.fft.fft2(_scipy_residual(x).mean(axis=0)))
    out = spectral.average_spectrum(x)
    assert out.shape == (3, 12, 14) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batches", [[7], [1, 6], [3, 2, 2]])
def test_streaming_accumulator_equals_in_memory(batches):
    x = _images((7, 3, 16, 16), seed=7)
    accumulator = spectral.SpectrumAccumulator()
    start = 0
    for size in batches:
        accumulator.update(x[start:start + size])
        start += size
    assert accumulator.count == 7
    np.testing.assert_allclose(accumulator.result(), spectral.average_spectrum(x), atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(accumulator.mean_residual(), _scipy_residual(x).mean(axis=0), atol=1e-9)


def test_accumulator_rejects_mismatched_shapes():
    accumulator = spectral.SpectrumAccumulator()
    accumulator.update(_images((1, 3, 8, 8)))
    with pytest.raises(ValueError, match="crop or resize"):
        accumulator.update(_images((1, 3, 8, 9)))
    with pytest.raises(ValueError, match="no images"):
        spectral.SpectrumAccumulator().result()


# --- radial profile ----------------------------------------------------------------------------------


def test_radial_profile_of_radius_field_is_the_bin_radius():
    # s = |frequency| in cycles/pixel: each ring's mean must be close to its nominal frequency
    size = 32
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    s = np.sqrt(fy**2 + fx**2)
    profile = spectral.radial_profile(s)
    freqs = spectral.radial_frequencies(size, size)
    assert profile.shape == (size // 2 + 1,)
    np.testing.assert_allclose(profile, freqs, atol=0.5 / size)
    np.testing.assert_allclose(spectral.radial_profile(np.fft.fftshift(s), centered=True), profile)
    # a [C, H, W] spectrum is averaged over channels first
    np.testing.assert_allclose(spectral.radial_profile(np.stack([s, 3 * s])), 2 * profile)


def test_radial_kernel_python_form_numba_and_bincount_agree():
    planes = np.random.default_rng(8).random((3, 6, 9))
    bins, n_bins = spectral.radial_bins(6, 9)
    expected = np.array([[p[bins == b].sum() for b in range(n_bins)] for p in planes])
    np.testing.assert_allclose(kernels.radial_sum_reference(planes, bins, n_bins), expected)
    for kernel in (kernels.radial_sum_kernel.py_func, kernels.radial_sum_kernel):
        out = np.empty((3, n_bins))
        kernel(planes, bins, n_bins, out)
        np.testing.assert_allclose(out, expected)


# --- AutoGAN normalisation ------------------------------------------------------------------------


def _numpy_autogan(spec: np.ndarray) -> np.ndarray:
    out = np.empty_like(spec)
    for i in range(spec.shape[0]):
        for c in range(spec.shape[1]):
            lo, hi = np.percentile(spec[i, c], 5), np.percentile(spec[i, c], 95)
            out[i, c] = np.clip((spec[i, c] - lo) / (hi - lo) * 2 - 1, -1, 1)
    return out


def test_autogan_normalize_matches_numpy_percentiles():
    spec = spectral.log_spectrum(_images((2, 3, 13, 11), seed=9))
    out = spectral.autogan_normalize(torch.from_numpy(spec))
    np.testing.assert_allclose(out.numpy(), _numpy_autogan(spec), atol=1e-5)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("high", [256, 3])  # 3 levels: heavy ties at the percentile ranks
def test_autogan_numba_kernel_python_form_and_numpy_agree(high):
    spec = spectral.log_spectrum(_images((2, 3, 13, 11), seed=11, high=high))
    spec[0, 1] = 0.5  # a flat channel maps to -1
    expected = _numpy_autogan_safe(spec)
    np.testing.assert_allclose(spectral.autogan_normalize(spec), expected, atol=1e-5)
    planes = spec.reshape(6, -1)
    np.testing.assert_allclose(kernels.autogan_normalize_reference(planes), expected.reshape(6, -1), atol=1e-5)
    out = np.empty_like(planes)
    kernels.autogan_normalize_kernel.py_func(planes, 5.0, 95.0, out)
    np.testing.assert_allclose(out, expected.reshape(6, -1), atol=1e-5)


def _numpy_autogan_safe(spec: np.ndarray) -> np.ndarray:
    out = np.full_like(spec, -1.0)
    for i in range(spec.shape[0]):
        for c in range(spec.shape[1]):
            if np.ptp(spec[i, c]) > 0:
                out[i, c] = _numpy_autogan(spec[i:i + 1, c:c + 1])[0, 0]
    return out


def test_autogan_normalize_is_safe_in_a_forward_pass():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = spectral.AutoGANSpectrum()(x)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and out.shape == x.shape
    flat = spectral.autogan_normalize(torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16))
    assert flat.dtype == torch.bfloat16 and bool((flat == -1).all())


# --- CUDA paths ---------------------------------------------------------------------------------------


@requires_cuda
def test_cuda_paths_match_cpu():
    x = _images((3, 3, 32, 24), seed=10)
    gpu = torch.from_numpy(x).cuda()
    np.testing.assert_allclose(spectral.log_spectrum(gpu).cpu().numpy(), _formula(x), atol=1e-3)
    np.testing.assert_allclose(spectral.noise_residual(gpu).cpu().numpy(), _scipy_residual(x), atol=1e-6)
    np.testing.assert_allclose(spectral.average_spectrum(gpu).cpu().numpy(), spectral.average_spectrum(x),
                               atol=1e-5, rtol=1e-5)
    accumulator = spectral.SpectrumAccumulator()
    accumulator.update(gpu[:1])
    accumulator.update(gpu[1:])
    np.testing.assert_allclose(accumulator.result(), spectral.average_spectrum(x), atol=1e-6, rtol=1e-6)
    spec = spectral.log_spectrum(gpu)
    np.testing.assert_allclose(spectral.autogan_normalize(spec).cpu().numpy(), _numpy_autogan(spec.cpu().numpy()),
                               atol=1e-5)
