"""Synthetic images for the demo tree: photo-like reals and fakes with each generator's artifact.

Every image is built from power-law noise fields (amplitude ~ 1/f^beta, the statistics of natural
images), coloured around a per-class palette shared by reals and fakes, so that the class says
nothing about real vs fake. The cues a detector can learn, per generator:

- real: rough texture (beta ~1.0) with sharp edges, low saturation, sensor noise, then JPEG
  (mostly q96) at varied non-square sizes; cues survive downscaling (texture slope, colour).
- midjourney: made at 128 px, bicubic-upsampled 8x to 1024: very smooth, saturated, warm shift.
- sdv14 / sdv15: made at 64 px (the latent size), bicubic 8x to 512: smooth, saturated; sdv15 a
  touch more saturated than sdv14 (they are near twins, as in the paper).
- wukong: as SD (it is SD-based), slightly smoother and cooler.
- adm: made at 256 px in pixel space: less smooth, mild residual noise left by sampling.
- glide: made at 64 px, bicubic 4x to 256 (GLIDE's 64->256 upsampler): the blurriest.
- vqdm: made at 128 px, bicubic 2x to 256, then pulled towards its 8x8 block means (mild
  block-quantisation pattern with period 8).
- biggan: made at 64 px and nearest-neighbour upsampled 2x to 128, plus a fixed-phase period-2
  checkerboard (transposed-convolution artifact): strong periodic peaks in the noise-residual
  spectrum at the Nyquist frequencies, which the diffusion fakes do not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# Chroma directions (orthonormal to grey): colour noise moves along these, luminance along (1,1,1).
_U = np.array([2.0, -1.0, -1.0], np.float32) / np.sqrt(6.0)
_V = np.array([0.0, 1.0, -1.0], np.float32) / np.sqrt(2.0)


def power_law_fields(
    rng: np.random.Generator, count: int, height: int, width: int, beta: float | tuple[float, ...]
) -> np.ndarray:
    """`count` independent fields [count, H, W], float32, zero mean, unit std, amplitude ~ 1/f^beta.

    `beta` is one slope for all fields or one per field.
    """
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    radius = np.sqrt(fy * fy + fx * fx)
    radius[0, 0] = 1.0
    betas = np.broadcast_to(np.asarray(beta, np.float32), (count,))[:, None, None]
    amplitude = radius[None] ** -betas
    amplitude[:, 0, 0] = 0.0
    shape = (count, height, width // 2 + 1)
    spectrum = (rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)) * amplitude
    fields = np.fft.irfft2(spectrum, s=(height, width)).astype(np.float32)
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-8
    return fields


def class_palette(class_id: int) -> np.ndarray:
    """A mid-tone base colour per ImageNet class (RGB float32), the same for reals and fakes."""
    hue = (class_id * 0.6180339887) % 1.0
    angle = 2.0 * np.pi * hue
    return (np.float32(120.0) + np.float32(35.0) * (np.cos(angle) * _U + np.sin(angle) * _V)).astype(np.float32)


def colourise(base: np.ndarray, luma: np.ndarray, chroma_u: np.ndarray, chroma_v: np.ndarray) -> np.ndarray:
    """RGB float32 [H, W, 3] = base + luminance along grey + chroma along the two colour axes."""
    grey = luma[..., None]
    return base + grey + chroma_u[..., None] * _U + chroma_v[..., None] * _V


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def real_photo(rng: np.random.Generator, class_id: int, height: int, width: int) -> np.ndarray:
    """A photo-like real: rough multi-scale texture, object-like edges, grey-ish colours, sensor noise.

    The texture is made at half size and upsampled (4x fewer FFT points); the sensor noise is added
    at full size, so the finest scale is still there.
    """
    low_h, low_w = (height + 1) // 2, (width + 1) // 2
    beta = rng.uniform(0.8, 1.1)
    fields = power_law_fields(rng, 4, low_h, low_w, (beta, beta, beta, 1.5))
    edges = np.tanh(4.0 * fields[3])  # sharp region boundaries
    luma = rng.uniform(30.0, 45.0) * fields[0] + rng.uniform(25.0, 40.0) * edges
    chroma = rng.uniform(4.0, 9.0)
    base = class_palette(class_id) + rng.normal(0.0, 10.0, 3).astype(np.float32)
    low = to_uint8(colourise(base, luma, chroma * fields[1], chroma * fields[2]))
    image = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    # Sensor noise: the sum of two uniform integers (triangular, close to Gaussian and 4x cheaper).
    spread = int(rng.integers(2, 5))
    noise = rng.integers(-spread, spread + 1, image.shape, np.int8)
    noise += rng.integers(-spread, spread + 1, image.shape, np.int8)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FakeStyle:
    """How one generator's fakes look: made at `made_at` px, upsampled to the native size."""

    made_at: int
    beta: float  # texture slope: larger = smoother
    contrast: float
    saturation: float
    tint: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise: float = 0.0  # residual Gaussian noise (levels)
    upsample: str = "bicubic"  # "bicubic" | "nearest"
    block: int = 0  # pull towards block means of this size (VQ-style), 0 = off
    checkerboard: float = 0.0  # amplitude of the fixed-phase period-2 pattern (levels)


FAKE_STYLES: dict[str, FakeStyle] = {
    "midjourney": FakeStyle(128, 2.2, 55.0, 38.0, tint=(10.0, 2.0, -10.0)),
    "sdv14": FakeStyle(64, 2.0, 50.0, 34.0),
    "sdv15": FakeStyle(64, 2.0, 50.0, 36.0),
    "wukong": FakeStyle(64, 2.1, 48.0, 33.0, tint=(-6.0, 0.0, 8.0)),
    "adm": FakeStyle(256, 1.8, 45.0, 28.0, noise=1.2),
    "glide": FakeStyle(64, 1.9, 45.0, 30.0),
    "vqdm": FakeStyle(128, 1.9, 48.0, 30.0, block=8),
    "biggan": FakeStyle(64, 1.6, 50.0, 34.0, upsample="nearest", checkerboard=3.0),
}

BLOCK_MIX = 0.3  # how far VQDM pixels move towards their block mean: visible in spectra, mild to the eye
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


def _checkerboard(size: int, amplitude: float) -> np.ndarray:
    """A fixed-phase period-2 pattern: the diagonal checkerboard plus row and column stripes."""
    parity = np.indices((size, size)).astype(np.float32) % 2 * 2 - 1  # [2, H, W] of +-1
    return amplitude * (parity[0] * parity[1] + 0.5 * (parity[0] + parity[1]))


def fake_image(rng: np.random.Generator, generator: str, class_id: int, size: int) -> np.ndarray:
    """A fake of `generator` at its native `size`, uint8 [size, size, 3]."""
    style = FAKE_STYLES[generator]
    low = style.made_at
    fields = power_law_fields(rng, 3, low, low, style.beta)
    base = class_palette(class_id) + rng.normal(0.0, 10.0, 3).astype(np.float32) + np.float32(style.tint)
    sat = style.saturation * rng.uniform(0.85, 1.15)
    rgb = colourise(base, style.contrast * fields[0], sat * fields[1], sat * fields[2])
    image = to_uint8(rgb)
    if low != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), _RESAMPLE[style.upsample]))
    if not (style.block or style.noise or style.checkerboard):
        return image
    out = image.astype(np.float32)
    if style.block:
        b = style.block
        means = out.reshape(size // b, b, size // b, b, 3).mean(axis=(1, 3), keepdims=True)
        blocks = np.broadcast_to(means, (size // b, b, size // b, b, 3)).reshape(out.shape)
        out = (1.0 - BLOCK_MIX) * out + BLOCK_MIX * blocks
    if style.noise:
        out += rng.normal(0.0, style.noise, out.shape).astype(np.float32)
    if style.checkerboard:
        out += _checkerboard(size, style.checkerboard)[..., None]
    return to_uint8(out)
