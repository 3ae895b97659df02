"""`genimage-fast bench spectral`: the numba spectral features vs plain numpy, same inputs, same run.

Each feature is timed twice, numba kernel and numpy reference (the same references the tests check
the kernels against). The FFT is reported on its own (scipy rfft2 as used vs numpy fft2), so the
numba figures are the non-FFT work: the median residual, the log-magnitude, AutoGAN's percentile
scaling, the radial binning and the streaming accumulation. A "non-fft total" row sums those.
On CUDA, the torch paths are timed beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
import torch

from genimage_fast.bench.common import Measurement, report, time_call
from genimage_fast.devices import resolve_device
from genimage_fast.spectral import kernels
from genimage_fast.spectral.accumulate import SpectrumAccumulator
from genimage_fast.spectral.features import (
    _fft_workers,
    log_spectrum,
    log_spectrum_reference,
    noise_residual,
    radial_bins,
    radial_profiles,
)
from genimage_fast.spectral.normalize import autogan_normalize

NON_FFT = ("residual", "log-magnitude", "normalize", "radial", "accumulate")


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Photo-like test batch: smooth random fields plus sensor-like noise, uint8 [n, 3, size, size]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 3, max(2, size // 16), max(2, size // 16)))
    smooth = np.repeat(np.repeat(coarse, 16, axis=2), 16, axis=3)[:, :, :size, :size]
    noisy = smooth + rng.normal(0, 6, smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _numpy_accumulate(x: np.ndarray, acc: np.ndarray) -> None:
    acc += kernels.median_residual_reference(x).sum(axis=0, dtype=np.float64)


def _radial_numpy(spectra: np.ndarray) -> np.ndarray:
    height, width = spectra.shape[-2:]
    bins, n_bins = radial_bins(height, width)
    planes = spectra.reshape(-1, height, width)
    counts = np.bincount(bins[bins >= 0], minlength=n_bins)
    return kernels.radial_sum_reference(planes, bins, n_bins) / counts


def _cases(x: np.ndarray) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(feature, numba call, numpy call) over the same batch."""
    height, width = x.shape[-2:]
    planes = x.reshape(-1, height, width).astype(np.float64)
    half = scipy.fft.rfft2(planes, workers=_fft_workers())
    full = np.fft.fft2(planes)
    log_out = np.empty(planes.shape, np.float32)
    spectra = log_spectrum(x)
    spectra_planes = spectra.reshape(-1, height * width)
    numba_acc, numpy_acc = SpectrumAccumulator(), np.zeros(x.shape[1:], np.float64)
    return [
        ("residual", lambda: noise_residual(x), lambda: kernels.median_residual_reference(x)),
        ("log-magnitude", lambda: kernels.log_magnitude_kernel(half, 1.0 / 255.0, log_out),
         lambda: kernels.log_magnitude_reference(full, 1.0 / 255.0)),
        ("normalize", lambda: autogan_normalize(spectra), lambda: kernels.autogan_normalize_reference(spectra_planes)),
        ("radial", lambda: radial_profiles(spectra), lambda: _radial_numpy(spectra)),
        ("accumulate", lambda: numba_acc.update(x), lambda: _numpy_accumulate(x, numpy_acc)),
        ("fft", lambda: scipy.fft.rfft2(planes, workers=_fft_workers()), lambda: np.fft.fft2(planes)),
        ("log_spectrum", lambda: log_spectrum(x), lambda: log_spectrum_reference(x)),
    ]


def _measure(name: str, fn: Callable[[], Any], n: int, iters: int, baseline: bool = False,
             sync: Callable[[], None] | None = None) -> Measurement:
    """Median of `iters` single timed calls after one warm-up (which also JIT-compiles): the CPU
    box is shared, and the median keeps another process's burst out of the figure."""
    time_call(fn, n, 0, warmup=1, sync=sync)
    seconds = sorted(time_call(fn, n, 1, warmup=0, sync=sync)[1] for _ in range(iters))
    return Measurement(name, n, seconds[len(seconds) // 2], baseline=baseline,
                       extra={"iters": iters, "seconds_each": seconds})


def _cuda_cases(x: np.ndarray) -> list[tuple[str, Callable[[], Any]]]:
    gpu = torch.from_numpy(x).cuda()
    accumulator = SpectrumAccumulator()
    return [
        ("residual", lambda: noise_residual(gpu)),
        ("accumulate", lambda: accumulator.update(gpu)),
        ("log_spectrum", lambda: log_spectrum(gpu)),
    ]


def run_spectral_bench(n: int = 64, size: int = 256, iters: int = 3, device: str = "auto",
                       json_path: str | None = None) -> dict[str, Any]:
    """Time every feature (numba and numpy) on one batch; print the table, return the JSON payload."""
    device = resolve_device(device).type
    x = _images(n, size)
    rows: list[Measurement] = []
    for feature, fast, plain in _cases(x):
        fast_name = "scipy-rfft2" if feature == "fft" else "numba"
        plain_name = "numpy-fft2" if feature == "fft" else "numpy"
        rows.append(_measure(f"{feature}/{fast_name}", fast, n, iters))
        rows.append(_measure(f"{feature}/{plain_name}", plain, n, iters, baseline=True))
    if device == "cuda":
        for feature, call in _cuda_cases(x):
            rows.append(_measure(f"{feature}/torch-cuda", call, n, iters, sync=torch.cuda.synchronize))
    for kind, baseline in (("numba", False), ("numpy", True)):
        picked = [m for m in rows if m.name in {f"{f}/{kind}" for f in NON_FFT}]
        rows.append(Measurement(f"non-fft total/{kind}", n, sum(m.seconds for m in picked),
                                baseline=baseline, extra={"features": list(NON_FFT)}))
    settings = {"n": n, "size": size, "iters": iters, "timing": "median of iters calls", "device": device,
                "channels": 3,
                "numba_threads": _numba_threads(), "input": "uint8 smooth random fields + noise"}
    return report("spectral features: numba vs numpy", rows, json_path, settings, group=lambda m: m.name.split("/")[0])


def _numba_threads() -> int:
    import numba

    return int(numba.get_num_threads())


def bench_spectral_command(n: int = 64, size: int = 256, iters: int = 3, json_path: str | None = None,
                           device: str = "auto") -> int:
    """CLI entry: genimage-fast bench spectral [--n N] [--size S] [--iters I] [--json FILE] [--device D]."""
    run_spectral_bench(n=n, size=size, iters=iters, device=device, json_path=json_path)
    return 0
