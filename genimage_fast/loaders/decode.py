"""Decode stored samples: full size by default (one decoder family for JPEG reals and PNG fakes).

`decode_full(kind, payload)` gives the full-size HWC uint8 RGB pixels PIL's `.convert("RGB")` gives:
JPEG through libjpeg-turbo (PyTurboJPEG; the same accurate IDCT and fancy upsampling PIL uses, so
bit-identical; PIL for CMYK and damaged streams), PNG through OpenCV for 8-bit RGB (bit-identical to
libpng via PIL) and PIL otherwise, raw pixels as stored. `decode_crop` is the box fast path of the
box transforms (rrc, resize_crop, resize_centre): full decode, then PIL's antialiased bilinear resize
of the box (`torchvision`'s `antialias=True` bilinear); when a crop is enlarged in both axes the
antialias filter is plain bilinear, so OpenCV's warpAffine (same fractional box, the flip folded into
the map, ~3x cheaper than PIL's generic resampler) does it within 1 level of PIL.

Why full size by default: a reduced-scale DCT-domain JPEG decode touches only JPEG samples, i.e.
GenImage's reals, never its PNG fakes: a preprocessing difference correlated with the label, the
kind of shortcut detectors learn. It stays as an opt-in speed option (`fast_jpeg_decode=True`,
decoder name "dct-scaled"): libjpeg-turbo decodes at 1/2, 1/4 or 1/8 scale whenever the crop keeps
DCT_MARGIN x the output size. Its deviation is measured by `genimage_fast.bench.dct_deviation`.

DECODERS maps a stored kind ("jpeg", "png", "raw", ...) to `decode(payload) -> HWC uint8 RGB` at
full size; a record format with its own codec registers its kind here.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable

import numpy as np
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.transforms import pixel_box
from genimage_fast.records.lossless import MAGIC as LOSSLESS_MAGIC
from genimage_fast.records.lossless import decode_lossless
from genimage_fast.registry import Registry

DecodeFn = Callable[[object], np.ndarray]
DECODERS: Registry[DecodeFn] = Registry("sample kind")
FULL, DCT_SCALED = "full", "dct-scaled"  # Loader.decoder values, recorded with runs and results

# Decode at 1/d only when the crop keeps >= 2x the output size: the antialiased resize then still
# shrinks >= 2x and dominates the result (measured on the demo JPEGs at 64 px: 0.9 levels mean
# difference to a full-size decode, vs 3.5 with a 1x margin and 4.4 with libjpeg's m/8 scales).
DCT_MARGIN = 2.0
_PNG_MAGIC = b"\x89PNG"
_JPEG_MAGIC = b"\xff\xd8"


@functools.lru_cache(maxsize=1)
def _turbojpeg_handle() -> tuple[object | None, str | None]:
    try:
        from turbojpeg import TurboJPEG

        return TurboJPEG(), None
    except (ImportError, RuntimeError, OSError) as err:
        why = f"{type(err).__name__}: {' '.join(str(err).split())}"
        # said once per process: full-size JPEGs then decode through PIL (same pixels, slower)
        logging.getLogger(__name__).warning("PyTurboJPEG does not load (%s): JPEGs decode through PIL "
                                            "(the same pixels, slower); fast_jpeg_decode is refused", why)
        return None, why


def turbojpeg():  # -> turbojpeg.TurboJPEG | None
    """The libjpeg-turbo handle (one per process), or None when the library is not installed."""
    return _turbojpeg_handle()[0]


def turbojpeg_missing() -> str | None:
    """Why the DCT-scaled decode (fast_jpeg_decode) cannot run here, or None: it needs PyTurboJPEG."""
    why = _turbojpeg_handle()[1]
    return None if why is None else (f"PyTurboJPEG does not load ({why}); pip install PyTurboJPEG "
                                     f"(needs libturbojpeg)")


@functools.lru_cache(maxsize=1)
def opencv():  # -> the cv2 module | None
    """OpenCV when installed (it comes with the ffcv extra): its PNG decode is ~20% faster than PIL's."""
    try:
        import cv2

        return cv2
    except ImportError:
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


def _pil(data) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


@DECODERS.register("jpeg")
def decode_jpeg(data) -> np.ndarray:
    """libjpeg-turbo at full size (bit-identical to PIL); PIL for what it refuses (CMYK, YCCK, damage)."""
    tj = turbojpeg()
    if tj is None or bytes(data[:2]) != _JPEG_MAGIC:
        return _pil(data)
    try:
        from turbojpeg import TJPF_RGB

        return tj.decode(data, pixel_format=TJPF_RGB)
    except OSError:  # CMYK / YCCK and damaged streams: PIL copes or names the problem
        return _pil(data)


def decode_jpeg_scaled(data, box: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """The opt-in fast path (fast_jpeg_decode): decode at 1/d in the DCT domain, then resize the box."""
    tj = turbojpeg()
    if tj is None:  # never a silent full-size decode under the "dct-scaled" name
        raise GenImageError(f"fast_jpeg_decode: {turbojpeg_missing()}")
    if bytes(data[:2]) != _JPEG_MAGIC:
        return resize_array(decode_full("jpeg", data), box, size, flip)
    try:
        from turbojpeg import TJPF_RGB

        width, height, _, _ = tj.decode_header(data)
        d = dct_scale(width, height, box, size)
        pixels = tj.decode(data, pixel_format=TJPF_RGB, scaling_factor=(1, d) if d > 1 else None)
    except OSError:
        return resize_array(_pil(data), box, size, flip)
    return resize_array(pixels, box, size, flip)


def _is_rgb8_png(data) -> bool:
    """IHDR says 8-bit truecolour (GenImage's fakes): OpenCV decodes these bit-identically to PIL."""
    return len(data) > 26 and bytes(data[:4]) == _PNG_MAGIC and data[24] == 8 and data[25] == 2


@DECODERS.register("png")
def decode_png(data) -> np.ndarray:
    """PNG (or anything PIL reads) at full size: 8-bit RGB via OpenCV, the other modes via PIL."""
    cv2 = opencv()
    if cv2 is None or not _is_rgb8_png(data):  # palette, grey, alpha, 16-bit: PIL's conversions
        return _pil(data)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("damaged PNG (OpenCV cannot decode it)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@DECODERS.register("lossless")
def decode_lossless_payload(data) -> np.ndarray:
    """The `lossless` store (records/lossless.py): zstd + a numba unfilter, both without the GIL;
    a damaged payload raises LosslessError (never garbage pixels)."""
    return decode_lossless(data)


@DECODERS.register("raw")
def decode_raw(pixels: np.ndarray) -> np.ndarray:
    """Stored pixels: no decode."""
    return np.asarray(pixels)


def sniff(kind: str, payload: object) -> str:
    """The kind the bytes really are (a '.JPEG' may hold a PNG); other kinds pass through."""
    if kind != "raw" and isinstance(payload, (bytes, bytearray, memoryview, np.ndarray)):
        head = bytes(payload[:4])
        if head == LOSSLESS_MAGIC:
            return "lossless"
        return "jpeg" if head[:2] == _JPEG_MAGIC else "png" if head == _PNG_MAGIC else kind
    return kind


def decode_full(kind: str, payload: object) -> np.ndarray:
    """The full-size HWC uint8 RGB pixels of a stored sample (what PIL's .convert('RGB') gives)."""
    return DECODERS.get(sniff(kind, payload))(payload)


def decode_crop(kind: str, payload: object, box: np.ndarray, size: int, flip: bool,
                fast_jpeg: bool = False) -> np.ndarray:
    """The box fast path: full-size decode (or the opt-in DCT-scaled JPEG decode), then the box resize."""
    kind = sniff(kind, payload)
    if fast_jpeg and kind == "jpeg":
        return decode_jpeg_scaled(payload, box, size, flip)
    return resize_array(DECODERS.get(kind)(payload), box, size, flip)


def decode_sample(kind: str, payload: object, box: np.ndarray, size: int, flip: bool, pipeline=None,
                  index: int = 0, epoch: int = 0, fast_jpeg: bool = False) -> np.ndarray:
    """One sample as a backend yields it: the box path, or full decode + the full-image pipeline
    (pipelines.SamplePipeline: degrade, then the eval / train transform)."""
    if pipeline is None:
        return decode_crop(kind, payload, box, size, flip, fast_jpeg)
    return pipeline(decode_full(kind, payload), index, epoch)
