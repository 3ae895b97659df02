"""Crop plans shared by every backend: one box per sample, in fractions of the image, drawn up front.

A transform is reduced to `(box, flip)`: `box = (x0, y0, x1, y1)` as fractions of the stored image's
width and height, then an antialiased bilinear resize of that box to `image_size` x `image_size`.
Fractions (not pixels) make one plan valid for every store mode: a `--max-side` record is the same
picture at a smaller size, and a JPEG decoded at a reduced DCT scale is too. Boxes are drawn from the
source size in the record metadata, vectorised over a whole split, so they depend only on
(seed, epoch, index) and never on worker count, batch composition or rank.

- `rrc`: torchvision RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)), 10 tries then the
  centre fallback, + horizontal flip (p = `hflip`, 0.5 by default).
- `resize_crop`: CNNSpot's resize short side to `resize_size` (default image_size / 0.875), random
  `image_size` crop, + flip.
- `eval`: resize short side to `resize_size` (default image_size / 0.875), centre crop. Box-resize
  equals resize-then-crop because the resampler reads support pixels outside the box.
- `full`: the whole image, for the full-image pipelines of pipelines.py (the originals' eval and
  train transforms, Task 2's source-space degradations), which decode at full size and crop themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genimage_fast.registry import Registry

EVAL_CROP_FRACTION = 0.875  # the ImageNet convention: 224 / 256


@dataclass(frozen=True)
class TransformSpec:
    """What every backend does to a sample: which crop family, the output size, the resize size."""

    kind: str  # "rrc" | "resize_crop" | "eval" | "full" (a full-image pipeline: no box, no planned flip)
    image_size: int
    resize_size: int = 0  # short side for resize_crop / eval; 0 = round(image_size / 0.875)
    hflip: float = 0.5  # probability of a horizontal flip in training (AutoGAN's recipe uses 0)

    @property
    def short_side(self) -> int:
        return self.resize_size or int(round(self.image_size / EVAL_CROP_FRACTION))

    @property
    def random(self) -> bool:
        return self.kind not in ("eval", "full")


@dataclass(frozen=True)
class CropPlan:
    """Per-sample crops for a whole split: boxes float64 [N, 4] (fractions), flips bool [N]."""

    boxes: np.ndarray
    flips: np.ndarray


BoxFn = Callable[[TransformSpec, np.ndarray, np.ndarray, np.random.Generator], np.ndarray]
CROPS: Registry[BoxFn] = Registry("crop transform")


def _sizes(width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source sizes as float; unknown sizes (<= 0) count as square so the box is still valid."""
    w = np.where(width > 0, width, 1).astype(np.float64)
    h = np.where(height > 0, height, 1).astype(np.float64)
    return w, h


def _to_fractions(x: np.ndarray, y: np.ndarray, cw: np.ndarray, ch: np.ndarray,
                  w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([x / w, y / h, (x + cw) / w, (y + ch) / h], axis=1)


@CROPS.register("rrc")
def rrc_boxes(spec: TransformSpec, width: np.ndarray, height: np.ndarray,
              rng: np.random.Generator, scale: tuple[float, float] = (0.08, 1.0),
              ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10) -> np.ndarray:
    """torchvision's RandomResizedCrop.get_params, vectorised over samples (same 10-try rule)."""
    n = len(width)
    w, h = _sizes(width, height)
    area = (w * h)[:, None]
    target = area * rng.uniform(scale[0], scale[1], size=(n, tries))
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(n, tries)))
    cw = np.round(np.sqrt(target * aspect))
    ch = np.round(np.sqrt(target / aspect))
    ok = (cw > 0) & (ch > 0) & (cw <= w[:, None]) & (ch <= h[:, None])
    found = ok.any(axis=1)
    first = ok.argmax(axis=1)
    rows = np.arange(n)
    cw, ch = cw[rows, first], ch[rows, first]
    # Fallback (no try fits): centre crop clamped to the ratio range, as torchvision does.
    in_ratio = w / h
    fw = np.where(in_ratio < ratio[0], w, np.where(in_ratio > ratio[1], np.round(h * ratio[1]), w))
    fh = np.where(in_ratio < ratio[0], np.round(w / ratio[0]), h)
    cw, ch = np.where(found, cw, fw), np.where(found, ch, fh)
    offsets = rng.random(size=(n, 2))  # integer offset = floor(u * (room + 1)), torchvision's randint
    x = np.where(found, np.floor(offsets[:, 0] * (w - cw + 1)), np.floor((w - cw) / 2))
    y = np.where(found, np.floor(offsets[:, 1] * (h - ch + 1)), np.floor((h - ch) / 2))
    return _to_fractions(x, y, cw, ch, w, h)


def _resized(spec: TransformSpec, w: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torchvision Resize(short_side) output sizes: the short side exact, the long one truncated."""
    short = float(spec.short_side)
    rw = np.where(w <= h, short, np.floor(short * w / h))
    rh = np.where(w <= h, np.floor(short * h / w), short)
    return rw, rh


def _crop_of_resized(spec: TransformSpec, w: np.ndarray, h: np.ndarray, left: np.ndarray, top: np.ndarray,
                     rw: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """An integer image_size crop of the resized image, expressed as a box of the source."""
    size = float(spec.image_size)
    cw, ch = np.minimum(size, rw), np.minimum(size, rh)  # a crop larger than the image is clamped
    return np.stack([left / rw, top / rh, (left + cw) / rw, (top + ch) / rh], axis=1)


@CROPS.register("resize_crop")
def resize_crop_boxes(spec: TransformSpec, width: np.ndarray, height: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """Resize(short_side) then RandomCrop(image_size), torchvision's integer offsets (CNNSpot)."""
    w, h = _sizes(width, height)
    rw, rh = _resized(spec, w, h)
    offsets = rng.random(size=(len(w), 2))
    left = np.floor(offsets[:, 0] * (np.maximum(rw - spec.image_size, 0) + 1))
    top = np.floor(offsets[:, 1] * (np.maximum(rh - spec.image_size, 0) + 1))
    return _crop_of_resized(spec, w, h, left, top, rw, rh)


@CROPS.register("eval")
def eval_boxes(spec: TransformSpec, width: np.ndarray, height: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """Resize(short_side) then CenterCrop(image_size), with torchvision's rounding of the offsets."""
    w, h = _sizes(width, height)
    rw, rh = _resized(spec, w, h)
    left = np.maximum(np.round((rw - spec.image_size) / 2.0), 0)
    top = np.maximum(np.round((rh - spec.image_size) / 2.0), 0)
    return _crop_of_resized(spec, w, h, left, top, rw, rh)


@CROPS.register("full")
def full_boxes(spec: TransformSpec, width: np.ndarray, height: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """The whole image: full-image pipelines (pipelines.py) decode and transform it themselves."""
    return np.tile(np.array([0.0, 0.0, 1.0, 1.0]), (len(width), 1))


def make_crop_plan(spec: TransformSpec, width: np.ndarray, height: np.ndarray,
                   seed: int, epoch: int) -> CropPlan:
    """Boxes and flips for every sample of a split, a pure function of (seed, epoch, sizes)."""
    rng = np.random.default_rng([seed, epoch, 0x6372])  # a stream of its own, apart from the order
    boxes = CROPS.get(spec.kind)(spec, np.asarray(width), np.asarray(height), rng)
    flips = rng.random(len(boxes)) < spec.hflip if spec.random else np.zeros(len(boxes), dtype=bool)
    return CropPlan(boxes=np.clip(boxes, 0.0, 1.0), flips=flips)


def pixel_box(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """A fractional box in the pixel coordinates of an image of this size."""
    return (float(box[0]) * width, float(box[1]) * height, float(box[2]) * width, float(box[3]) * height)
