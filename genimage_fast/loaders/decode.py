"""Decode one stored sample straight into its crop: JPEG at a reduced DCT scale, PNG via PIL, raw.

Every path ends in the same resampler, PIL's antialiased bilinear resize of a box (what torchvision's
`antialias=True` bilinear reproduces), so backends agree to rounding. When a crop is enlarged in both
axes the antialias filter is plain bilinear, so OpenCV's warpAffine (same fractional box, the flip
folded into the map, ~3x cheaper than PIL's generic resampler) does it within 1 level of PIL. A JPEG is decoded by
libjpeg-turbo at 1/2, 1/4 or 1/8 scale whenever the crop is large enough (see DCT_MARGIN): the IDCT
then produces 1/4 to 1/64 of the pixels, far cheaper than decoding full size and resizing.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from genimage_fast.loaders.transforms import pixel_box
from genimage_fast.registry import Registry

DecodeFn = Callable[[object, np.ndarray, int, bool], np.ndarray]
DECODERS: Registry[DecodeFn] = Registry("sample kind")

# Decode at 1/d only when the crop keeps >= 2x the output size: the antialiased resize then still
# shrinks >= 2x and dominates the result (measured on the demo JPEGs at 64 px: 0.9 levels mean
# difference to a full-size decode, vs 3.5 with a 1x margin and 4.4 with libjpeg's m/8 scales).
# Detectors key on high frequencies, so reals must not look different from fakes for this reason.
DCT_MARGIN = 2.0
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


def resize_array(pixels: np.ndarray, box: np.ndarray, size: int, flip: bool, bgr: bool = False) -> np.ndarray:
    """resize_box for an HWC uint8 array (RGB, or BGR as OpenCV decodes): enlargements go through
    OpenCV's bilinear warp, everything else through PIL; returns contiguous RGB."""
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = pixel_box(box, width, height)
    cv2 = opencv()
    if cv2 is None or x1 - x0 > size or y1 - y0 > size:  # shrinking: PIL's antialiased filter
        rgb = pixels[:, :, ::-1] if bgr else pixels
        return resize_box(Image.fromarray(np.ascontiguousarray(rgb)), box, size, flip)
    sx, sy = (x1 - x0) / size, (y1 - y0) / size
    # Inverse map of output pixel centres to source coordinates, as PIL's bilinear does:
    # src = (dst + 0.5) * s + x0 - 0.5, mirrored in x for a flip.
    if flip:
        row_x = [-sx, 0.0, (size - 0.5) * sx + x0 - 0.5]
    else:
        row_x = [sx, 0.0, 0.5 * sx + x0 - 0.5]
    matrix = np.array([row_x, [0.0, sy, 0.5 * sy + y0 - 0.5]])
    out = cv2.warpAffine(np.ascontiguousarray(pixels), matrix, (size, size),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out[:, :, ::-1]) if bgr else out


def dct_scale(width: int, height: int, box: np.ndarray, size: int) -> int:
    """The reduced-decode denominator d in (1, 2, 4, 8): the largest whose crop, decoded at 1/d, still
    spans DCT_MARGIN x size pixels, so the final antialiased resize shrinks by at least that much."""
    span = min((box[2] - box[0]) * width, (box[3] - box[1]) * height)
    for d in (8, 4, 2):
        if span / d >= DCT_MARGIN * size:
            return d
    return 1


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
        d = dct_scale(width, height, box, size)
        pixels = tj.decode(data, pixel_format=TJPF_RGB, scaling_factor=(1, d) if d > 1 else None)
    except OSError:  # CMYK / YCCK and damaged streams: PIL copes or names the problem
        return _pil(data, box, size, flip)
    return resize_array(pixels, box, size, flip)


@functools.lru_cache(maxsize=1)
def opencv():  # -> the cv2 module | None
    """OpenCV when installed (it comes with the ffcv extra): its PNG decode is ~20% faster than PIL's."""
    try:
        import cv2

        return cv2
    except ImportError:
        return None


def _is_rgb8_png(data) -> bool:
    """IHDR says 8-bit truecolour (GenImage's fakes): OpenCV decodes these bit-identically to PIL."""
    return len(data) > 26 and bytes(data[:4]) == _PNG_MAGIC and data[24] == 8 and data[25] == 2


@DECODERS.register("png")
def decode_png(data: bytes, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """PNG (or anything PIL reads) at full size: PNG has no cheaper reduced decode."""
    cv2 = opencv()
    if cv2 is None or not _is_rgb8_png(data):  # palette, grey, alpha, 16-bit: PIL's conversions
        return _pil(data, box, size, flip)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("damaged PNG (OpenCV cannot decode it)")
    return resize_array(bgr, box, size, flip, bgr=True)


@DECODERS.register("raw")
def decode_raw(pixels: np.ndarray, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """Stored pixels: no decode, only the crop-resize."""
    return resize_array(pixels, box, size, flip)


def decode_crop(kind: str, payload: object, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """Dispatch on the stored kind (sniffing bytes, since a '.JPEG' may hold a PNG)."""
    if kind != "raw" and isinstance(payload, (bytes, bytearray, memoryview, np.ndarray)):
        head = bytes(payload[:4])
        kind = "jpeg" if head[:2] == _JPEG_MAGIC else "png" if head == _PNG_MAGIC else kind
    return DECODERS.get(kind)(payload, box, size, flip)
