"""Decoding, validation, resizing and encoding of single images (PIL / libjpeg-turbo)."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from genimage_fast.records.lossless import decode_lossless, is_lossless
from genimage_fast.records.quality import estimate_jpeg_quality

# source_format codes (DESIGN §4.3)
FORMAT_JPEG, FORMAT_PNG, FORMAT_OTHER = 0, 1, 2
# payload kinds as stored in records; they are also the webdataset extensions' meaning
KIND_EXTENSIONS = {"jpeg": "jpg", "png": "png", "raw": "raw", "lossless": "lossless"}
EXTENSION_KINDS = {ext: kind for kind, ext in KIND_EXTENSIONS.items()}


class UnreadableImage(Exception):
    """An input that cannot become a record; str(exc) is the reason written to rejects.jsonl."""


def sniff_format(data: bytes) -> int:
    """The source_format from magic bytes, never from the file extension."""
    if data[:3] == b"\xff\xd8\xff":
        return FORMAT_JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return FORMAT_PNG
    return FORMAT_OTHER


def sniff_kind(data: bytes) -> str:
    """'jpeg', 'png' or 'lossless' for encoded payloads (where the kind is not stored beside the bytes)."""
    if is_lossless(data):
        return "lossless"
    return "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (CMYK, L, P, LA, RGBA, I;16) as RGB exactly as `Image.convert("RGB")` gives it,
    which is what the detectors' loaders (torchvision's pil_loader) and our loaders see: alpha is
    dropped, 16-bit grey is clipped to 255 (not rescaled)."""
    return image if image.mode == "RGB" else image.convert("RGB")


@dataclass(frozen=True)
class SourceImage:
    """A validated input: its bytes, what they are, and the decoded RGB pixels."""

    data: bytes
    source_format: int
    jpeg_quality: int
    image: Image.Image  # RGB, fully decoded

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@lru_cache(maxsize=1)
def _turbojpeg() -> Any:
    """One libjpeg-turbo handle per process, or None when the library is missing."""
    try:
        from turbojpeg import TurboJPEG

        return TurboJPEG()
    except (ImportError, OSError, RuntimeError) as err:
        # PIL decodes with libjpeg-turbo too (same pixels), ~1.7x slower: say so once per process
        logging.getLogger(__name__).warning("PyTurboJPEG does not load (%s: %s); convert decodes JPEGs with "
                                            "PIL (same pixels, slower)", type(err).__name__, err)
        return None


def _decode_jpeg_fast(data: bytes) -> Image.Image | None:
    """libjpeg-turbo decode (~1.7x PIL). None for anything it cannot do cleanly (CMYK, any
    warning such as a premature end): PIL then decides, so the verdict stays PIL's."""
    tj = _turbojpeg()
    if tj is None:
        return None
    from turbojpeg import TJPF_RGB

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # libjpeg warnings (truncation, corrupt data) -> exceptions
        try:
            pixels = tj.decode(data, pixel_format=TJPF_RGB)
        except (OSError, Warning, ValueError):
            return None
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        return None
    return Image.fromarray(pixels)


def load_source(data: bytes) -> SourceImage:
    """Decode and fully validate one input; raise UnreadableImage with a one-line reason."""
    if not data:
        raise UnreadableImage("empty file")
    fmt = sniff_format(data)
    if fmt == FORMAT_JPEG and (fast := _decode_jpeg_fast(data)) is not None:
        return SourceImage(data=data, source_format=fmt, jpeg_quality=estimate_jpeg_quality(data), image=fast)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()  # full decode: catches truncation and corrupt entropy data
            if opened.width < 1 or opened.height < 1:
                raise UnreadableImage("zero-size image")
            image = to_rgb(opened)
            image.load()
    except UnreadableImage:
        raise
    except Image.UnidentifiedImageError:
        raise UnreadableImage("bad header: not a recognised image") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = "truncated" if "truncated" in reason.lower() else "undecodable"
        raise UnreadableImage(f"{kind}: {reason}") from None
    quality = estimate_jpeg_quality(data) if fmt == FORMAT_JPEG else -1
    return SourceImage(data=data, source_format=fmt, jpeg_quality=quality, image=image)


def resize_max_side(image: Image.Image, max_side: int | None) -> Image.Image:
    """Downsize so the longer side is max_side (antialiased, aspect kept); smaller images unchanged."""
    if not max_side or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """libjpeg-turbo via PIL, standard tables, 4:2:0 (PIL's default) at this quality."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(quality))
    return out.getvalue()


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG; low compression level because convert speed matters more than a few % size."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def decode_image(kind: str, payload: bytes | np.ndarray) -> np.ndarray:
    """A stored payload as HWC uint8 RGB: 'jpeg'/'png'/'lossless' bytes are decoded, 'raw' arrays
    returned as is. A damaged lossless payload raises records.lossless.LosslessError."""
    if kind == "lossless":
        return decode_lossless(payload)
    if kind == "raw":
        array = np.asarray(payload, dtype=np.uint8)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"raw payload must be HWC with 3 channels, got shape {array.shape}")
        return array
    if kind not in ("jpeg", "png"):
        raise ValueError(f"unknown payload kind {kind!r}")
    with Image.open(io.BytesIO(bytes(payload))) as image:
        return np.asarray(to_rgb(image), dtype=np.uint8)
