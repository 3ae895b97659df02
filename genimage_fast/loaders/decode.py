"""Decode one stored sample straight into its crop: JPEG at a reduced DCT scale, PNG via PIL, raw.

Every path ends in the same resampler, PIL's antialiased bilinear resize of a box (what torchvision's
`antialias=True` bilinear reproduces), so backends agree to rounding. A JPEG is decoded by
libjpeg-turbo at the smallest m/8 scale whose crop still covers the output size: the IDCT then
produces 1/4 to 1/64 of the pixels, far cheaper than decoding full size and resizing.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from genimage_fast.loaders.transforms import pixel_box
from genimage_fast.registry import Registry

DecodeFn = Callable[[object, np.ndarray, int, bool], np.ndarray]
DECODERS: Registry[DecodeFn] = Registry("sample kind")

_PNG_MAGIC = b"\x89PNG"
_JPEG_MAGIC = b"\xff\xd8"


@functools.lru_cache(maxsize=1)
def turbojpeg():  # -> turbojpeg.TurboJPEG | None
    """The libjpeg-turbo handle (one per process), or None when the library is not installed."""
    try:
        from turbojpeg import TurboJPEG

        return TurboJPEG()
    except (ImportError, RuntimeError, OSError):
        return None


def resize_box(image: Image.Image, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """Antialiased bilinear resize of a fractional box to size x size; HWC uint8 RGB."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = image.resize((size, size), Image.BILINEAR, box=pixel_box(box, image.width, image.height))
    if flip:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(out)


def dct_scale(width: int, height: int, box: np.ndarray, size: int) -> int:
    """The smallest m in 1..8 such that the box, decoded at scale m/8, still spans >= size pixels."""
    need = max(size / max((box[2] - box[0]) * width, 1e-6), size / max((box[3] - box[1]) * height, 1e-6))
    return min(8, max(1, math.ceil(need * 8)))


def _pil(data: bytes, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return resize_box(image, box, size, flip)


@DECODERS.register("jpeg")
def decode_jpeg(data: bytes, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """libjpeg-turbo at a reduced DCT scale; PIL for what it refuses (CMYK, PNG named .JPEG)."""
    tj = turbojpeg()
    if tj is None or not bytes(data[:2]) == _JPEG_MAGIC:
        return _pil(data, box, size, flip)
    try:
        from turbojpeg import TJPF_RGB

        width, height, _, _ = tj.decode_header(data)
        m = dct_scale(width, height, box, size)
        g = math.gcd(m, 8)
        pixels = tj.decode(data, pixel_format=TJPF_RGB, scaling_factor=(m // g, 8 // g))
    except OSError:  # CMYK / YCCK and damaged streams: PIL copes or names the problem
        return _pil(data, box, size, flip)
    return resize_box(Image.fromarray(pixels), box, size, flip)


@DECODERS.register("png")
def decode_png(data: bytes, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """PNG (or anything PIL reads) at full size: PNG has no cheaper reduced decode."""
    return _pil(data, box, size, flip)


@DECODERS.register("raw")
def decode_raw(pixels: np.ndarray, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """Stored pixels: no decode, only the crop-resize."""
    return resize_box(Image.fromarray(np.ascontiguousarray(pixels)), box, size, flip)


def decode_crop(kind: str, payload: object, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """Dispatch on the stored kind (sniffing bytes, since a '.JPEG' may hold a PNG)."""
    if kind != "raw" and isinstance(payload, (bytes, bytearray, memoryview, np.ndarray)):
        head = bytes(payload[:4])
        kind = "jpeg" if head[:2] == _JPEG_MAGIC else "png" if head == _PNG_MAGIC else kind
    return DECODERS.get(kind)(payload, box, size, flip)
