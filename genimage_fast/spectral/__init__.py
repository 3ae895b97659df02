"""Spectral features: AutoGAN log spectra (the `spec` detector's input), noise-residual spectra and
radial profiles (the paper's frequency analysis, Figure 2), numba on the CPU and torch on the GPU."""

from genimage_fast.spectral.accumulate import SpectrumAccumulator
from genimage_fast.spectral.analysis import periodic_frequencies, periodic_peak_score
from genimage_fast.spectral.features import (
    average_spectrum,
    log_spectrum,
    noise_residual,
    radial_bins,
    radial_frequencies,
    radial_profile,
    radial_profiles,
)
from genimage_fast.spectral.normalize import AutoGANSpectrum, autogan_normalize

__all__ = [
    "AutoGANSpectrum",
    "SpectrumAccumulator",
    "autogan_normalize",
    "average_spectrum",
    "log_spectrum",
    "noise_residual",
    "periodic_frequencies",
    "periodic_peak_score",
    "radial_bins",
    "radial_frequencies",
    "radial_profile",
    "radial_profiles",
]
