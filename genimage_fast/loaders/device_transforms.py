"""The eval transforms of eval_transforms.py on uint8 [n, 3, H, W] tensors, on any device (issue #12).

Source-space evaluation on CUDA (device_eval.py) decodes each test image at full size, degrades it with
our kernels on the device and then needs the detector's eval transform there too: a round trip to the
host per image would cost more than the degradation. Each entry of DEVICE_EVAL_TRANSFORMS has the name
of its host twin and is built from the host transform object (so the options are the host's):
`DEVICE_EVAL_TRANSFORMS.get(name)(host_transform) -> fn(x [n,3,H,W] uint8) -> [n,3,S,S] uint8`, for a
group of images of one size.

The resamplers reproduce the libraries the originals call:
- `pil_resize`: Pillow's ImagingResample for 8-bit images (src/libImaging/Resample.c): per-axis
  coefficients from `precompute_coeffs` (filter support stretched by the scale when shrinking: the
  antialias), rounded to 22-bit fixed point as `normalize_coeffs_8bpc`, the horizontal pass first and
  clipped to uint8, then the vertical pass (Pillow <= 12 order), each output `clip8((sum + 2^21) >> 22)`.
  The sums of integer
  pixels times integer coefficients run as float64 matmuls: every partial sum is an integer below 2^53,
  so each pass is exact: one-pass resizes are Pillow's bit for bit, two-pass ones too when the pass
  order is Pillow's (`vertical_first` says what we know of Pillow 13's choice).
- `cv2_linear`: cv2.resize INTER_LINEAR (no antialias; half-pixel centres, borders clamped) as torch's
  non-antialiased bilinear interpolation in float32, rounded half up. OpenCV's 8-bit path uses 11-bit
  fixed-point weights, so a few pixels differ by 1 level (stated bound, tested against cv2).
- `centre_crop`: torchvision's CenterCrop rule (zero padding where the image is smaller, the odd pixel
  right / bottom; offsets rounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genimage_fast.errors import GenImageError
from genimage_fast.kernels.runtime import upload
from genimage_fast.loaders import eval_transforms as host
from genimage_fast.loaders.npr_transforms import NPREval, NPRGenImageEval
from genimage_fast.registry import Registry

DeviceTransform = Callable[[torch.Tensor], torch.Tensor]
DEVICE_EVAL_TRANSFORMS: Registry[Callable[[Any], DeviceTransform]] = Registry("device eval transform")

PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
_FILTER_SUPPORT = {"bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}


def _filter(name: str, x: np.ndarray) -> np.ndarray:
    """Resample.c's filter functions (bicubic with a = -0.5)."""
    x = np.abs(x)
    if name == "bilinear":
        return np.where(x < 1.0, 1.0 - x, 0.0)
    if name == "bicubic":
        a = -0.5
        near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
        far = (((x - 5) * x + 8) * x - 4) * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))
    if name == "lanczos":
        def sinc(v: np.ndarray) -> np.ndarray:
            return np.where(v == 0.0, 1.0, np.sin(np.pi * v) / np.where(v == 0.0, 1.0, np.pi * v))

        return np.where(x < 3.0, sinc(x) * sinc(x / 3.0), 0.0)
    raise ValueError(f"no device resampler for PIL filter {name!r}; have: {', '.join(_FILTER_SUPPORT)}")


def pil_coefficients(in_size: int, start: float, end: float, out_size: int,
                     filter_name: str = "bilinear") -> tuple[int, np.ndarray]:
    """Resample.c `precompute_coeffs` for the span [start, end) of an axis of in_size pixels resized to
    out_size: (first source pixel, float64 weights [out_size, k] over source pixels first .. first+k-1)."""
    if filter_name not in _FILTER_SUPPORT:
        raise ValueError(f"no device resampler for PIL filter {filter_name!r}; have: {', '.join(_FILTER_SUPPORT)}")
    support_1 = _FILTER_SUPPORT[filter_name]
    start32, end32 = np.float32(start), np.float32(end)  # the C signature takes floats: (float)(in1 - in0)
    scale = float(end32 - start32) / out_size
    filterscale = max(scale, 1.0)
    support = support_1 * filterscale
    centre = float(start32) + (np.arange(out_size) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)  # C's (int): toward zero, then clamped
    hi = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    first, last = int(lo.min()), int(hi.max())
    x = np.arange(first, last)
    w = _filter(filter_name, (x[None, :] - centre[:, None] + 0.5) / filterscale)
    w[(x[None, :] < lo[:, None]) | (x[None, :] >= hi[:, None])] = 0.0
    total = w.sum(axis=1, keepdims=True)
    return first, w / np.where(total == 0, 1.0, total)


def fixed_point(weights: np.ndarray) -> np.ndarray:
    """normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point (float64, integer-valued)."""
    scaled = weights * (1 << PRECISION_BITS)
    return np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5))


def _clip8(sums: torch.Tensor) -> torch.Tensor:
    """clip8((ss + 2^21) >> 22) on exact integer float64 sums -> float64 levels 0..255."""
    return torch.floor((sums + float(1 << (PRECISION_BITS - 1))) / float(1 << PRECISION_BITS)).clamp_(0, 255)


def pil_resize(x: torch.Tensor, size: tuple[int, int], filter_name: str = "bilinear",
               box: tuple[float, float, float, float] | None = None) -> torch.Tensor:
    """PIL's `Image.resize((w, h), filter, box=box)` on uint8 [n, 3, H, W] -> uint8 [n, 3, h, w]; each pass
    bit-exact, the pass order as vertical_first says."""
    height, width = x.shape[-2:]
    out_w, out_h = int(size[0]), int(size[1])
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(width), float(height))
    need_h = out_w != width or x0 != 0 or x1 != width
    need_v = out_h != height or y0 != 0 or y1 != height
    if not (need_h or need_v):
        return x.clone()
    y = x.to(torch.float64)
    if not need_v:
        first_x, wx = pil_coefficients(width, x0, x1, out_w, filter_name)
        return _horizontal(y, first_x, wx).to(torch.uint8)
    first_y, wy = pil_coefficients(height, y0, y1, out_h, filter_name)
    if not need_h:
        return _vertical(y, first_y, wy).to(torch.uint8)
    first_x, wx = pil_coefficients(width, x0, x1, out_w, filter_name)
    y = y[:, :, first_y:first_y + wy.shape[1], first_x:first_x + wx.shape[1]]  # the source pixels used
    if vertical_first(x1 - x0, y1 - y0, out_w, out_h):
        return _horizontal(_vertical(y, 0, wy), 0, wx).to(torch.uint8)
    return _vertical(_horizontal(y, 0, wx), 0, wy).to(torch.uint8)


def vertical_first(box_w: float, box_h: float, out_w: int, out_h: int) -> bool:
    """The pass order of a two-pass resize (the uint8 intermediate rounds in between, so it shows).

    Pillow <= 12 (Resample.c ImagingResampleInner, python-pillow/Pillow at 4e5f09f) always runs the
    horizontal pass first. Pillow 13 (installed here) sometimes runs the vertical pass first, by a rule
    whose source we could not read. Measured against it on random images: when the vertical pass
    shrinks and the horizontal one does not, it went vertical first in all 69 full-image cases (and 27
    of 31 boxed ones); elsewhere mostly horizontal first, including every aspect-preserving resize
    (timm's). We follow exactly that: so timm's transforms and square sources (GenImage's fakes) come
    out bit-exact, and a squash of a portrait image that shrinks both sides may differ where the
    intermediate rounds (photo-like images: <= 0.26 level mean, <= 3 max; tests/test_device_transforms.py)."""
    shrinks_y = float(np.float32(box_h)) / out_h > 1.0
    shrinks_x = float(np.float32(box_w)) / out_w > 1.0
    return shrinks_y and not shrinks_x


def _horizontal(y: torch.Tensor, first: int, w: np.ndarray) -> torch.Tensor:
    k = upload(torch.from_numpy(fixed_point(w)), y.device)
    return _clip8(y[..., first:first + w.shape[1]] @ k.T)


def _vertical(y: torch.Tensor, first: int, w: np.ndarray) -> torch.Tensor:
    k = upload(torch.from_numpy(fixed_point(w)), y.device)
    return _clip8(k @ y[..., first:first + w.shape[1], :])




def cv2_linear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """cv2.resize(img, (w, h)) (INTER_LINEAR, no antialias) on uint8 [n, 3, H, W]; within 1 level of OpenCV."""
    out_w, out_h = int(size[0]), int(size[1])
    if (x.shape[-1], x.shape[-2]) == (out_w, out_h):
        return x.clone()
    y = F.interpolate(x.to(torch.float32), size=(out_h, out_w), mode="bilinear", align_corners=False,
                      antialias=False)
    return torch.floor(y + 0.5).clamp_(0, 255).to(torch.uint8)


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision CenterCrop(size) on [.., H, W] (host twin: eval_transforms.centre_crop)."""
    h, w = x.shape[-2:]
    if size > w or size > h:
        pad_x, pad_y = max(size - w, 0), max(size - h, 0)
        x = F.pad(x, (pad_x // 2, pad_x - pad_x // 2, pad_y // 2, pad_y - pad_y // 2))
        h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


# ---------------------------------------------------------------------------------------------- registry


@DEVICE_EVAL_TRANSFORMS.register("resize_centre")
def _resize_centre(t: host.ResizeCentre) -> DeviceTransform:
    from genimage_fast.loaders.transforms import TransformSpec, eval_boxes, pixel_box

    spec = TransformSpec("eval", t.image_size, resize_size=t.resize_size)

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        box = np.clip(eval_boxes(spec, np.array([w]), np.array([h]), None)[0], 0.0, 1.0)
        return pil_resize(x, (t.image_size, t.image_size), "bilinear", pixel_box(box, w, h))

    return run


def _timm(t: host.TimmEval) -> DeviceTransform:
    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = host.short_side_size(w, h, int(math.floor(t.image_size / t.crop_pct)))
        if size != (w, h):
            x = pil_resize(x, size, t.interpolation)
        return centre_crop(x, t.image_size)

    return run


DEVICE_EVAL_TRANSFORMS.add("timm_resnet50", _timm)
DEVICE_EVAL_TRANSFORMS.add("timm_vit", _timm)


@DEVICE_EVAL_TRANSFORMS.register("cnndetection")
def _cnndetection(t: host.CnnDetectionEval) -> DeviceTransform:
    return lambda x: centre_crop(x, t.image_size)


@DEVICE_EVAL_TRANSFORMS.register("autogan")
def _autogan(t: host.AutoGanEval) -> DeviceTransform:
    load = t.load_size or int(round(t.image_size * 256 / 224))
    if load < t.image_size:  # the host twin's check
        raise GenImageError(f"autogan: load_size {load} is smaller than image_size {t.image_size}")

    def run(x: torch.Tensor) -> torch.Tensor:
        x = cv2_linear(x, (load, load))
        off = (load - t.image_size) // 2
        return x[..., off:off + t.image_size, off:off + t.image_size]

    return run


@DEVICE_EVAL_TRANSFORMS.register("f3net")
def _f3net(t: host.F3NetEval) -> DeviceTransform:
    return lambda x: pil_resize(x, (t.image_size, t.image_size), t.interpolation)


@DEVICE_EVAL_TRANSFORMS.register("gramnet")
def _gramnet(t: host.GramNetEval) -> DeviceTransform:
    return lambda x: cv2_linear(x, (t.image_size, t.image_size))


@DEVICE_EVAL_TRANSFORMS.register("npr")
def _npr(t: NPREval) -> DeviceTransform:
    return lambda x: centre_crop(pil_resize(x, (t.load_size, t.load_size), "bilinear"), t.image_size)


@DEVICE_EVAL_TRANSFORMS.register("npr_genimage")
def _npr_genimage(t: NPRGenImageEval) -> DeviceTransform:
    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < t.image_size:  # translate_duplicate: a tiling when the short side is under the crop
            x = x.repeat(1, 1, math.ceil(t.image_size / h), math.ceil(t.image_size / w))
        return centre_crop(x, t.image_size)

    return run
