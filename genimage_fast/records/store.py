"""Store modes: how a validated source image becomes the payload written into a record."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.records.imageio import (
    FORMAT_JPEG,
    FORMAT_PNG,
    SourceImage,
    encode_jpeg,
    encode_png,
    resize_max_side,
)
from genimage_fast.records.lossless import encode_lossless
from genimage_fast.registry import Registry

Payload = tuple[str, bytes | np.ndarray]  # (kind: jpeg|png|raw, bytes or HWC uint8)
DEFAULT_REENCODE_QUALITY = 95  # a resized JPEG whose quality cannot be estimated


@dataclass(frozen=True)
class StoreSpec:
    """A parsed --store value: the mode's name and its quality (jpeg:Q only)."""

    name: str
    quality: int | None = None

    def __str__(self) -> str:
        return f"{self.name}:{self.quality}" if self.quality is not None else self.name


class StoreMode(ABC):
    """Base: subclasses turn (source, label, target quality) into a payload."""

    needs_real_qualities = False  # match-real draws fake qualities from the reals' distribution

    @abstractmethod
    def encode(self, src: SourceImage, label: int, max_side: int | None, spec: StoreSpec,
               drawn_quality: int | None) -> Payload:
        """The (kind, payload) to store for this source image."""


STORE_MODES: Registry[type[StoreMode]] = Registry("store mode")


def keep_original(src: SourceImage, max_side: int | None) -> Payload:
    """The source bytes verbatim; when resized, re-encoded in the source's own format."""
    resized = resize_max_side(src.image, max_side)
    if resized is src.image:
        if src.source_format == FORMAT_JPEG:
            return "jpeg", src.data
        if src.source_format == FORMAT_PNG:
            return "png", src.data
        return "png", encode_png(resized)  # BMP/WebP/...: records only hold JPEG, PNG or raw
    if src.source_format == FORMAT_JPEG:
        quality = src.jpeg_quality if src.jpeg_quality > 0 else DEFAULT_REENCODE_QUALITY
        return "jpeg", encode_jpeg(resized, quality)
    return "png", encode_png(resized)


@STORE_MODES.register("original")
class OriginalStore(StoreMode):
    def encode(self, src, label, max_side, spec, drawn_quality):
        return keep_original(src, max_side)


@STORE_MODES.register("raw")
class RawStore(StoreMode):
    def encode(self, src, label, max_side, spec, drawn_quality):
        return "raw", np.asarray(resize_max_side(src.image, max_side), dtype=np.uint8)


@STORE_MODES.register("lossless")
class LosslessStore(StoreMode):
    """Every image's decoded pixels (libjpeg-turbo / libpng, as `Image.convert("RGB")` gives them),
    bit-exact, in the fast codec of records/lossless.py. Reals too, not their JPEG bytes: every
    backend then sees libjpeg-turbo's pixels (a GPU's nvJPEG does not give them) and decodes them
    ~2x faster than the JPEG, at ~3x the JPEG's size (benchmarks/RESULTS.md, "Lossless codec")."""

    def encode(self, src, label, max_side, spec, drawn_quality):
        return "lossless", encode_lossless(np.asarray(resize_max_side(src.image, max_side), dtype=np.uint8))


@STORE_MODES.register("jpeg")
class JpegStore(StoreMode):
    def encode(self, src, label, max_side, spec, drawn_quality):
        return "jpeg", encode_jpeg(resize_max_side(src.image, max_side), spec.quality or 0)


@STORE_MODES.register("match-real")
class MatchRealStore(StoreMode):
    """Grommelt et al. 2024: reals keep their bytes, fakes become JPEGs at the reals' qualities."""

    needs_real_qualities = True

    def encode(self, src, label, max_side, spec, drawn_quality):
        if label == 0:
            return keep_original(src, max_side)
        if drawn_quality is None:
            raise ValueError("match-real needs a drawn quality for every fake")
        return "jpeg", encode_jpeg(resize_max_side(src.image, max_side), drawn_quality)


@STORE_MODES.register("fakes-jpeg")
class FakesJpegStore(StoreMode):
    """Grommelt et al.'s JPEG step: reals keep their bytes, every fake becomes PIL's JPEG at quality Q."""

    def encode(self, src, label, max_side, spec, drawn_quality):
        if label == 0:
            return keep_original(src, max_side)
        return "jpeg", encode_jpeg(resize_max_side(src.image, max_side), spec.quality or 0)


def parse_store(text: str) -> StoreSpec:
    """'original' | 'lossless' | 'raw' | 'jpeg:Q' (1..100) | 'match-real' -> StoreSpec; GenImageError otherwise."""
    name, _, arg = text.strip().partition(":")
    STORE_MODES.get(name)  # unknown names -> GenImageError with close matches
    if name in ("jpeg", "fakes-jpeg"):
        if not arg.isdigit() or not 1 <= int(arg) <= 100:
            raise GenImageError(f"--store {name}:Q needs a quality Q in 1..100, got {text!r}")
        return StoreSpec(name, int(arg))
    if arg:
        raise GenImageError(f"--store {name} takes no argument, got {text!r}")
    return StoreSpec(name)


def get_store(spec: StoreSpec) -> StoreMode:
    return STORE_MODES.get(spec.name)()
