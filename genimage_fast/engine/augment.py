"""On-device training augmentation: `build_train_augment(aug_cfg, loss_cfg)` ->
`augment(images uint8 [N,3,H,W], labels, generator) -> (x float [M,3,H,W] in [0,1], labels [M])`.

The loader has already cropped and flipped, so nothing here flips again. In order:
1. CNNSpot blur + JPEG (`aug.blur_prob`, `aug.jpeg_prob`) through `genimage_fast.degrade.cnnspot`:
   per image, blur with probability p_blur at sigma ~ U(0, blur_sigma_max), then JPEG with probability
   p_jpeg at a quality drawn uniformly from `jpeg_quality` = [lo, hi] (CNNDetection
   `data/datasets.py`), on the device AFTER the loader's crop. An explicit opt-in (off in every
   recipe): the original blurs and JPEGs the 256 resize before its random crop, which is
   `data.train_transform: cnnspot` (loaders/train_transforms.py), recipes/cnnspot.yaml's setting.
2. Views. For `loss.name == jsd_ce` (timm's AugMixDataset + JsdCrossEntropy): the clean images plus
   `jsd_splits - 1` augmented copies of the same crops, concatenated split-major (all clean first,
   then each augmented split) with the labels repeated, as timm's collate lays them out. The
   augmented views use AugMix (`aug.augmix`, timm's defaults m3-w3, depth 1-3, alpha 1) or the
   RandAugment policy. Otherwise RandAugment, if set, augments the batch itself.
3. RandAugment (`aug.randaugment`, timm policy strings "rand-m9-mstd0.5-inc1": n ops per image
   (default 2) drawn with replacement, each applied with probability 0.5 at magnitude m (+ N(0, mstd)
   noise, clipped to [0, mmax]); timm's op set and level-to-argument mappings, fill = ImageNet mean).
   Per sample, like timm's per-image transform: each image draws its own ops, magnitudes and signs;
   the batch is then grouped by op so each op runs once, vectorised over its images on their
   device (colour ops as PIL's ImageEnhance blends, geometric ops as PIL's affine maps through
   affine_grid/grid_sample; compared with timm's PIL ops in the tests).
4. uint8 -> float [0, 1].
5. Random erasing (`aug.random_erase` = probability), timm RandomErasing semantics: per image, one
   box of 2%-33% of the area, aspect ratio log-uniform in [0.3, 1/0.3], up to 10 placement tries,
   mode 'pixel'. timm fills with N(0, 1) on normalised input; on our [0, 1] input that is
   ImageNet mean + std · N(0, 1), clamped to [0, 1]. With jsd_ce the clean split is not erased
   (timm's `num_splits`). One masked `where` over the erased images from their boxes.

No host syncs (issue #17): `generator` is a CPU torch.Generator (checkpointed by the trainer). Every
parameter (ops, coins, magnitudes, boxes, CNNSpot's coins) is drawn on the host, before any device
work, from a numpy generator seeded by it, and the whole batch's parameters go to the device in one
pinned, non-blocking copy (`HostParams`). The erasing noise comes from a device generator re-seeded
per batch from the same draws, so a run resumed from the CPU generator's state repeats exactly.
Constant tensors (fill colour, mean/std, the sharpness kernel) are cached per device. Nothing
reads a device value back: `engine.syncs.SyncCounter` sees no scalar read in a step
(tests/test_sync_free.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from genimage_fast.config import AugConfig, LossConfig
from genimage_fast.errors import GenImageError
from genimage_fast.models.common import IMAGENET_MEAN, IMAGENET_STD
from genimage_fast.registry import Registry

_LEVEL_DENOM = 10.0  # timm: magnitudes are on a 0..10 scale
_FILL = tuple(float(round(255 * m)) for m in IMAGENET_MEAN)  # timm's img_mean fill for geometric ops
_ARGS = 6  # the widest per-image argument row (an affine map's six coefficients)


# ---------------------------------------------------------------------------------------------- host -> device


@functools.lru_cache(maxsize=64)
def blend_like_pil(images: torch.Tensor, other: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """PIL's Image.blend(a, b, alpha) (timm's AugMix mix): a + alpha * (b - a) in float32, truncated to uint8."""
    base = images.float()
    return (base + alpha * (other.float() - base)).floor_().clamp_(0, 255).to(torch.uint8)


def device_constant(values: tuple[float, ...], device: torch.device,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A constant 1-D tensor on `device`, made once per (values, device, dtype) without a host sync."""
    host = torch.tensor(values, dtype=dtype)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


@dataclass
class HostParams:
    """Per-batch parameters gathered on the host, then uploaded in ONE pinned non_blocking copy.

    `add(array)` returns a handle; after `upload(device)`, `get(handle)` is that array on the device
    (float64, so indices, thresholds and float32 arguments all arrive exact)."""

    _parts: list[np.ndarray] = field(default_factory=list)
    _spans: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    _size: int = 0
    _device_buffer: torch.Tensor | None = None

    def add(self, values: np.ndarray) -> int:
        arr = np.ascontiguousarray(values, dtype=np.float64)
        self._parts.append(arr.reshape(-1))
        self._spans.append((self._size, arr.shape))
        self._size += arr.size
        return len(self._spans) - 1

    def upload(self, device: torch.device) -> HostParams:
        host = torch.from_numpy(np.concatenate(self._parts) if self._parts else np.zeros(0))
        if device.type == "cuda":  # the caching host allocator keeps the pinned block alive until the copy ends
            self._device_buffer = host.pin_memory().to(device, non_blocking=True)
        else:
            self._device_buffer = host.to(device)
        return self

    def get(self, handle: int) -> torch.Tensor:
        assert self._device_buffer is not None, "upload() first"
        start, shape = self._spans[handle]
        return self._device_buffer[start:start + math.prod(shape)].view(shape)


# ---------------------------------------------------------------------------------------------- ops


@dataclass(frozen=True)
class AugOp:
    """One augmentation op in two halves: `args(m, s, (h, w))` builds the per-image arguments on the
    host (numpy [K, P]) from magnitudes m [K] (0..10) and signs s [K] (+-1, timm's _randomly_negate);
    `apply(images uint8 [K, 3, H, W], args float64 [K, P] on their device)` runs on the device.
    Calling the op does both (one upload): for single use and tests."""

    args: Callable[[np.ndarray, np.ndarray, tuple[int, int]], np.ndarray]
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, img: torch.Tensor, m: np.ndarray, s: np.ndarray) -> torch.Tensor:
        params = HostParams()
        handle = params.add(self.args(np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64),
                                      (img.shape[-2], img.shape[-1])))
        return self.apply(img, params.upload(img.device).get(handle))


OPS: Registry[AugOp] = Registry("augmentation op")


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def _no_args(m: np.ndarray, s: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return np.zeros((len(m), 0))


def _per_image(a: torch.Tensor) -> torch.Tensor:
    """Column 0 of the args [K, P] -> float32 [K, 1, 1, 1] (the float32 factor PIL's blends use here)."""
    return a[:, 0].to(torch.float32).view(-1, 1, 1, 1)


def _blend(img: torch.Tensor, degenerate: torch.Tensor | float, a: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance / torchvision _blend: factor·img + (1 - factor)·degenerate, clamped, truncated."""
    f = _per_image(a)
    return (img.float() * f + degenerate * (1.0 - f)).clamp_(0, 255).to(torch.uint8)


def _gray_floor(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.float().unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).floor_().unsqueeze(1)


def _sharpness(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH-kernel sharpness (torchvision's version): borders kept, interior blended."""
    if img.shape[-1] <= 2 or img.shape[-2] <= 2:
        return img
    # The 3x3 SMOOTH kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 as an exact integer sum of shifted views: a
    # conv2d would make cuDNN autotune (and sync) for every new number of images drawing this op.
    h, w = img.shape[-2:]
    q = img.to(torch.int32)
    total = 4 * q[..., 1:-1, 1:-1]
    for dy in range(3):
        for dx in range(3):
            total = total + q[..., dy:h - 2 + dy, dx:w - 2 + dx]
    blurred = (total.float() / 13.0).round_()
    x = img.float()
    out = x.clone()
    inner = out[..., 1:-1, 1:-1]
    inner.add_((blurred - inner) * (1.0 - _per_image(a)))
    return out.clamp_(0, 255).to(torch.uint8)


def _autocontrast(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """torchvision's autocontrast_image (PIL's ImageOps.autocontrast, cutoff 0) with `where` instead of
    boolean-mask writes, which sync on CUDA."""
    x = img.float()
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    flat = hi == lo
    inv_scale = torch.where(flat, 1.0, (hi - lo).mul_(1.0 / 255.0))
    lo = torch.where(flat, 0.0, lo)
    return x.sub_(lo).div_(inv_scale).clamp_(0, 255).to(torch.uint8)


def _posterize_args(bits: np.ndarray) -> np.ndarray:
    keep = np.clip(bits, 0, 8).astype(np.int64)
    return _column((255 << (8 - keep)) & 255)


def _posterize(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return img & a[:, 0].to(torch.uint8).view(-1, 1, 1, 1)


def _solarize(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    t = a[:, 0].to(torch.int16).view(-1, 1, 1, 1)
    return torch.where(img.to(torch.int16) >= t, 255 - img, img)


def _solarize_add(img: torch.Tensor, a: torch.Tensor, thresh: int = 128) -> torch.Tensor:
    add = a[:, 0].to(torch.int16).view(-1, 1, 1, 1)
    return torch.where(img < thresh, (img.to(torch.int16) + add).clamp_(max=255).to(torch.uint8), img)


def _theta(coeffs: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """PIL `Image.transform(AFFINE, (a, b, c, d, e, f))` coefficients [K, 6] (output point (X, Y) samples
    the input at (aX + bY + c, dX + eY + f), pixel centres at +0.5) -> affine_grid's theta [K, 6]."""
    h, w = hw
    k = len(coeffs)
    m = np.zeros((k, 3, 3))
    m[:, :2, :] = coeffs.reshape(k, 2, 3)
    m[:, 2, 2] = 1.0
    to_pixels = np.array([[w / 2, 0, w / 2], [0, h / 2, h / 2], [0, 0, 1.0]])  # normalised -> pixel
    to_norm = np.linalg.inv(to_pixels)
    return (to_norm @ m @ to_pixels)[:, :2].reshape(k, 6)


def _pil_affine(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The affine map of `_theta`, bilinear, fill = timm's img_mean."""
    k, _, h, w = img.shape
    theta = a.to(torch.float32).view(k, 2, 3)
    grid = F.affine_grid(theta, [k, 4, h, w], align_corners=False)
    x = torch.cat([img.float(), torch.ones_like(img[:, :1], dtype=torch.float32)], dim=1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = out[:, 3:]
    fill = device_constant(_FILL, img.device).view(1, 3, 1, 1)
    return (out[:, :3] + (1.0 - inside) * fill).round_().clamp_(0, 255).to(torch.uint8)


def _rotate_args(degrees: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """PIL Image.rotate (counter-clockwise, about the centre), as timm calls it."""
    h, w = hw
    cx, cy = w / 2.0, h / 2.0
    a = -np.radians(degrees)
    cos, sin = np.cos(a), np.sin(a)
    coeffs = np.stack([cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy], axis=1)
    return _theta(coeffs, hw)


def _affine_rows(n: int, b: np.ndarray | float = 0.0, c: np.ndarray | float = 0.0,
                 d: np.ndarray | float = 0.0, f: np.ndarray | float = 0.0) -> np.ndarray:
    one, zero = np.ones(n), np.zeros(n)
    return np.stack([one, zero + b, zero + c, zero + d, one, zero + f], axis=1)


def _enhance(m: np.ndarray) -> np.ndarray:
    return m / _LEVEL_DENOM * 1.8 + 0.1


def _enhance_increasing(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    return 1.0 + s * (m / _LEVEL_DENOM * 0.9)


def _contrast(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return _blend(img, _gray_floor(img).mean(dim=(1, 2, 3), keepdim=True), a)


def _brightness(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return _blend(img, 0.0, a)


def _color(img: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return _blend(img, _gray_floor(img), a)


def _op(name: str, args: Callable[[np.ndarray, np.ndarray, tuple[int, int]], np.ndarray],
        apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    OPS.add(name, AugOp(args, apply))


# Level-to-argument mappings: timm auto_augment.py LEVEL_TO_ARG.
_op("AutoContrast", _no_args, _autocontrast)
_op("Equalize", _no_args, lambda img, a: TF.equalize(img))
_op("Invert", _no_args, lambda img, a: TF.invert(img))
_op("Rotate", lambda m, s, hw: _rotate_args(s * m / _LEVEL_DENOM * 30.0, hw), _pil_affine)
_op("Posterize", lambda m, s, hw: _posterize_args((m / _LEVEL_DENOM * 4).astype(int)), _posterize)
_op("PosterizeIncreasing", lambda m, s, hw: _posterize_args(4 - (m / _LEVEL_DENOM * 4).astype(int)), _posterize)
_op("Solarize", lambda m, s, hw: _column((m / _LEVEL_DENOM * 256).astype(int)), _solarize)
_op("SolarizeIncreasing", lambda m, s, hw: _column(256 - (m / _LEVEL_DENOM * 256).astype(int)), _solarize)
_op("SolarizeAdd", lambda m, s, hw: _column((m / _LEVEL_DENOM * 110).astype(int)), _solarize_add)
_op("Color", lambda m, s, hw: _column(_enhance(m)), _color)
_op("ColorIncreasing", lambda m, s, hw: _column(_enhance_increasing(m, s)), _color)
_op("Contrast", lambda m, s, hw: _column(_enhance(m)), _contrast)
_op("ContrastIncreasing", lambda m, s, hw: _column(_enhance_increasing(m, s)), _contrast)
_op("Brightness", lambda m, s, hw: _column(_enhance(m)), _brightness)
_op("BrightnessIncreasing", lambda m, s, hw: _column(_enhance_increasing(m, s)), _brightness)
_op("Sharpness", lambda m, s, hw: _column(_enhance(m)), _sharpness)
_op("SharpnessIncreasing", lambda m, s, hw: _column(_enhance_increasing(m, s)), _sharpness)
_op("ShearX", lambda m, s, hw: _theta(_affine_rows(len(m), b=s * m / _LEVEL_DENOM * 0.3), hw), _pil_affine)
_op("ShearY", lambda m, s, hw: _theta(_affine_rows(len(m), d=s * m / _LEVEL_DENOM * 0.3), hw), _pil_affine)
_op("TranslateXRel", lambda m, s, hw: _theta(_affine_rows(len(m), c=s * m / _LEVEL_DENOM * 0.45 * hw[1]), hw),
    _pil_affine)
_op("TranslateYRel", lambda m, s, hw: _theta(_affine_rows(len(m), f=s * m / _LEVEL_DENOM * 0.45 * hw[0]), hw),
    _pil_affine)

# timm auto_augment.py: _RAND_TRANSFORMS, _RAND_INCREASING_TRANSFORMS, _AUGMIX_TRANSFORMS.
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
AUGMIX_OPS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
              "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY",
              "TranslateXRel", "TranslateYRel")


def _magnitudes(m: float, mstd: float, mmax: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """timm AugmentOp, per image: Gaussian noise on the magnitude (mstd = inf: uniform in [0, m]), clipped."""
    if mstd == float("inf"):
        values = rng.uniform(0.0, m, n)
    elif mstd > 0:
        values = rng.normal(m, mstd, n)
    else:
        values = np.full(n, m, dtype=np.float64)
    return np.clip(values, 0.0, mmax)


def _signs(n: int, rng: np.random.Generator) -> np.ndarray:
    """timm's _randomly_negate: negative when random() > 0.5."""
    return np.where(rng.random(n) > 0.5, -1.0, 1.0)


@dataclass(frozen=True)
class GroupedPlan:
    """One grouped pass, decided on the host: the images that get an op are gathered in `order`
    (grouped by op), op `name` runs on the contiguous rows [start, end) of the gathered batch with
    its argument rows, and the results are copied back to their places (`order` again)."""

    order: int  # HostParams handles
    args: int
    ranges: tuple[tuple[str, int, int], ...]


def plan_grouped(choice: np.ndarray, names: tuple[str, ...], magnitudes: np.ndarray, signs: np.ndarray,
                 hw: tuple[int, int], params: HostParams) -> GroupedPlan | None:
    """Image i gets op names[choice[i]] (choice -1: unchanged); None when no image gets an op."""
    order = np.argsort(choice, kind="stable")
    order = order[choice[order] >= 0]  # the untouched images stay where they are
    ranked = choice[order]
    args = np.zeros((len(order), _ARGS))
    ranges = []
    for j, name in enumerate(names):
        start, end = (int(v) for v in np.searchsorted(ranked, [j, j + 1]))
        if end > start:
            idx = order[start:end]
            a = OPS.get(name).args(magnitudes[idx], signs[idx], hw)
            args[start:end, :a.shape[1]] = a
            ranges.append((name, start, end))
    if not ranges:
        return None
    return GroupedPlan(params.add(order), params.add(args), tuple(ranges))


def run_grouped(images: torch.Tensor, plan: GroupedPlan | None, params: HostParams) -> torch.Tensor:
    """The device half of a grouped pass: one gather, each op once on its rows, one copy back."""
    if plan is None:
        return images
    order = params.get(plan.order).long()
    grouped = images.index_select(0, order)
    args = params.get(plan.args)
    for name, start, end in plan.ranges:
        grouped[start:end] = OPS.get(name).apply(grouped[start:end], args[start:end])
    return images.clone().index_copy_(0, order, grouped)


def apply_grouped(images: torch.Tensor, choice: np.ndarray, names: tuple[str, ...], magnitudes: np.ndarray,
                  signs: np.ndarray) -> torch.Tensor:
    """Image i gets op names[choice[i]] (choice -1: unchanged); each op runs once on its images."""
    params = HostParams()
    plan = plan_grouped(np.asarray(choice), names, np.asarray(magnitudes, dtype=np.float64),
                        np.asarray(signs, dtype=np.float64), (images.shape[-2], images.shape[-1]), params)
    return run_grouped(images, plan, params.upload(images.device))


@dataclass(frozen=True)
class RandAugment:
    """timm's RandAugment on a uint8 batch: every image draws its own ops, coins, magnitudes and signs."""

    magnitude: float = 9.0
    num_layers: int = 2
    mstd: float = 0.0
    mmax: float = 10.0
    increasing: bool = False
    prob: float = 0.5

    @classmethod
    def from_policy(cls, policy: str) -> RandAugment:
        """Parse timm's "rand-m9-n2-mstd0.5-mmax10-inc1"; unknown parts are a GenImageError."""
        parts = policy.split("-")
        if parts[0] != "rand":
            raise GenImageError(f"aug.randaugment: {policy!r} is not a RandAugment policy ('rand-m9-mstd0.5-inc1'; "
                                "for AugMix views set aug.augmix: true)")
        kw: dict[str, float | int | bool] = {}
        keys = {"mstd": "mstd", "mmax": "mmax", "inc": "increasing", "m": "magnitude", "n": "num_layers"}
        for part in parts[1:]:
            key = next((k for k in keys if part.startswith(k) and _is_number(part[len(k):])), None)
            if key is None:
                raise GenImageError(f"aug.randaugment: cannot parse {part!r} in {policy!r}")
            value = float(part[len(key):])
            kw[keys[key]] = bool(value) if key == "inc" else int(value) if key == "n" else value
        return cls(**kw)  # type: ignore[arg-type]

    @property
    def ops(self) -> tuple[str, ...]:
        return RAND_INCREASING_OPS if self.increasing else RAND_OPS

    def plan(self, n: int, hw: tuple[int, int], rng: np.random.Generator, params: HostParams) -> list:
        """The host half: every layer's draws (ops drawn with replacement, each applied with prob)."""
        layers = []
        for _ in range(self.num_layers):
            choice = rng.integers(0, len(self.ops), n)
            applied = rng.random(n) <= self.prob
            magnitudes = _magnitudes(self.magnitude, self.mstd, self.mmax, n, rng)
            layers.append(plan_grouped(np.where(applied, choice, -1), self.ops, magnitudes, _signs(n, rng), hw,
                                       params))
        return layers

    def run(self, images: torch.Tensor, plan: list, params: HostParams) -> torch.Tensor:
        for layer in plan:
            images = run_grouped(images, layer, params)
        return images

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        params = HostParams()
        plan = self.plan(images.shape[0], (images.shape[-2], images.shape[-1]), rng, params)
        return self.run(images, plan, params.upload(images.device))


@dataclass(frozen=True)
class AugMix:
    """timm's AugMixAugment (non-blended): Dirichlet-weighted chains of 1-3 ops, Beta-blended with the image."""

    magnitude: float = 3.0
    width: int = 3
    depth: int = -1
    alpha: float = 1.0

    def plan(self, n: int, hw: tuple[int, int], rng: np.random.Generator, params: HostParams) -> tuple:
        weights = params.add(rng.dirichlet([self.alpha] * self.width, size=n).T)  # [width, n]
        m = params.add(rng.beta(self.alpha, self.alpha, size=n))
        chains = []
        for _ in range(self.width):
            depth = np.full(n, self.depth) if self.depth > 0 else rng.integers(1, 4, n)
            steps = []
            for step in range(int(depth.max())):
                choice = np.where(depth > step, rng.integers(0, len(AUGMIX_OPS), n), -1)
                magnitudes = _magnitudes(self.magnitude, float("inf"), 10.0, n, rng)
                steps.append(plan_grouped(choice, AUGMIX_OPS, magnitudes, _signs(n, rng), hw, params))
            chains.append(steps)
        return weights, m, chains

    def run(self, images: torch.Tensor, plan: tuple, params: HostParams) -> torch.Tensor:
        weights_h, m_h, chains = plan
        weights = params.get(weights_h).to(torch.float32).view(self.width, -1, 1, 1, 1)
        m = params.get(m_h).to(torch.float32).view(-1, 1, 1, 1)
        mixed = torch.zeros(images.shape, dtype=torch.float32, device=images.device)
        for w, steps in enumerate(chains):
            chain = images
            for step in steps:
                chain = run_grouped(chain, step, params)
            mixed += weights[w] * chain.float()
        mixed = mixed.clamp_(0, 255).to(torch.uint8).float()  # timm: np.clip then astype(uint8)
        return blend_like_pil(images, mixed, m)

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        params = HostParams()
        plan = self.plan(images.shape[0], (images.shape[-2], images.shape[-1]), rng, params)
        return self.run(images, plan, params.upload(images.device))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def erasing_boxes(n: int, hw: tuple[int, int], prob: float, rng: np.random.Generator) -> np.ndarray:
    """timm RandomErasing's draws (mode 'pixel', one box, 10 tries) for n images:
    [n, 4] = (top, left, height, width); height 0 = not erased."""
    h, w = hw
    boxes = np.zeros((n, 4))
    log_ratio = (math.log(0.3), math.log(1 / 0.3))
    for i in range(n):
        if rng.random() > prob:
            continue
        for _ in range(10):
            area = rng.uniform(0.02, 1 / 3) * h * w
            ratio = math.exp(rng.uniform(*log_ratio))
            eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if ew < w and eh < h:
                boxes[i] = (int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew)
                break
    return boxes


def erase_(x: torch.Tensor, boxes: torch.Tensor, box_hw: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Fill boxes of float [N, 3, H, W] in [0, 1] with ImageNet mean + std · N(0, 1), clamped, in place.

    boxes: [K, 5] = (image, top, left, height, width) on x's device, one row per erased image;
    box_hw: the largest box height and width (host ints). Noise is drawn for K boxes of that size
    only (from `generator`, on x's device) and gathered into place; one masked `where`."""
    k, (c, h, w), (bh_max, bw_max) = boxes.shape[0], x.shape[1:], box_hw
    image = boxes[:, 0].long()
    top, left, bh, bw = (v.view(k, 1, 1, 1) for v in boxes[:, 1:].to(torch.int64).unbind(1))
    r = torch.arange(h, device=x.device).view(1, 1, h, 1) - top
    q = torch.arange(w, device=x.device).view(1, 1, 1, w) - left
    inside = (r >= 0) & (r < bh) & (q >= 0) & (q < bw)  # [K, 1, H, W]
    where = (r.clamp(0, bh_max - 1) * bw_max + q.clamp(0, bw_max - 1)).view(k, 1, h * w).expand(k, c, h * w)
    noise = torch.randn((k, c, bh_max * bw_max), generator=generator, device=x.device, dtype=x.dtype)
    mean = device_constant(tuple(IMAGENET_MEAN), x.device).to(x.dtype).view(1, c, 1)
    std = device_constant(tuple(IMAGENET_STD), x.device).to(x.dtype).view(1, c, 1)
    fill = (mean + std * noise).clamp_(0.0, 1.0).gather(2, where).view(k, c, h, w)
    return x.index_copy_(0, image, torch.where(inside, fill, x.index_select(0, image)))


def host_rng(generator: torch.Generator) -> tuple[np.random.Generator, int]:
    """This batch's numpy generator and device-noise seed, drawn from the CPU torch generator (no sync:
    a CPU tensor's .numpy() dispatches nothing)."""
    if generator.device.type != "cpu":
        raise ValueError("the augmentation draws its parameters on the host: pass a CPU torch.Generator "
                         f"(got one on {generator.device}); a device generator would sync every step")
    seeds = torch.randint(0, 2**62, (2,), generator=generator).numpy()
    return np.random.default_rng(int(seeds[0])), int(seeds[1])


class TrainAugment:
    """The configured augmentation (see the module docstring for the order)."""

    def __init__(self, aug_cfg: AugConfig, loss_cfg: LossConfig) -> None:
        self.cfg = aug_cfg
        self.splits = loss_cfg.jsd_splits if loss_cfg.name == "jsd_ce" else 1
        self.randaugment = RandAugment.from_policy(aug_cfg.randaugment) if aug_cfg.randaugment else None
        self.augmix = AugMix() if aug_cfg.augmix else None
        if self.augmix and self.splits == 1:
            raise GenImageError("aug.augmix makes views for loss.name 'jsd_ce'; set the loss or turn augmix off")
        if self.splits > 1 and not (self.augmix or self.randaugment):
            raise GenImageError("loss 'jsd_ce' compares augmented views: set aug.randaugment or aug.augmix")
        if not 0.0 <= aug_cfg.random_erase <= 1.0:
            raise GenImageError(f"aug.random_erase is a probability, got {aug_cfg.random_erase}")
        lo_hi = aug_cfg.jpeg_quality
        if len(lo_hi) != 2 or not 1 <= lo_hi[0] <= lo_hi[1] <= 100:
            raise GenImageError(f"aug.jpeg_quality must be [lo, hi] within 1..100, got {lo_hi}")
        self.view = self.augmix or self.randaugment
        self._noise: dict[torch.device, torch.Generator] = {}  # erasing noise, re-seeded every batch

    def _cnnspot(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from genimage_fast import degrade

        c = self.cfg
        return degrade.cnnspot(images, p_blur=c.blur_prob, p_jpeg=c.jpeg_prob, generator=generator,
                               sigma_max=c.blur_sigma_max, quality=tuple(c.jpeg_quality))

    def _noise_generator(self, device: torch.device, seed: int) -> torch.Generator:
        gen = self._noise.get(device)
        if gen is None:
            gen = self._noise[device] = torch.Generator(device=device)
        return gen.manual_seed(seed)  # host-side state: no sync

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """generator: a CPU torch.Generator (ValueError otherwise); all draws come from it."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"augment expects uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        c = self.cfg
        if c.blur_prob > 0 or c.jpeg_prob > 0:
            images = self._cnnspot(images, generator)
        rng, noise_seed = host_rng(generator)
        n, hw = images.shape[0], (images.shape[-2], images.shape[-1])
        # Host half: every draw of the batch, before any device work, then one upload.
        params = HostParams()
        views = [self.view.plan(n, hw, rng, params) for _ in range(self.splits - 1)] if self.splits > 1 else []
        layers = self.randaugment.plan(n, hw, rng, params) if self.splits == 1 and self.randaugment else None
        first = n if self.splits > 1 else 0  # jsd_ce: the clean split is not erased
        drawn = erasing_boxes(n * self.splits - first, hw, c.random_erase, rng) if c.random_erase > 0 else None
        hit = np.flatnonzero(drawn[:, 2] > 0) if drawn is not None else np.zeros(0, dtype=np.int64)
        boxes = params.add(np.concatenate([(hit + first)[:, None], drawn[hit]], axis=1)) if hit.size else None
        box_hw = (int(drawn[hit, 2].max()), int(drawn[hit, 3].max())) if hit.size else (0, 0)
        params.upload(images.device)
        # Device half.
        if self.splits > 1:
            assert self.view is not None
            images = torch.cat([images] + [self.view.run(images, plan, params) for plan in views])
            labels = labels.repeat(self.splits)
        elif layers is not None:
            images = self.randaugment.run(images, layers, params)
        x = images.float().div_(255.0)
        if boxes is not None:
            erase_(x, params.get(boxes), box_hw, self._noise_generator(x.device, noise_seed))
        return x, labels

    def __repr__(self) -> str:
        return (f"TrainAugment(splits={self.splits}, randaugment={self.randaugment}, augmix={self.augmix}, "
                f"random_erase={self.cfg.random_erase}, blur={self.cfg.blur_prob}, jpeg={self.cfg.jpeg_prob})")


def build_train_augment(aug_cfg: AugConfig, loss_cfg: LossConfig) -> TrainAugment:
    """The training augmentation for these config sections (validated here: bad values raise now)."""
    return TrainAugment(aug_cfg, loss_cfg)
