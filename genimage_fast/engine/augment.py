"""On-device training augmentation: `build_train_augment(aug_cfg, loss_cfg)` ->
`augment(images uint8 [N,3,H,W], labels, generator) -> (x float [M,3,H,W] in [0,1], labels [M])`.

The loader has already cropped and flipped, so nothing here flips again. In order:
1. CNNSpot blur + JPEG (`aug.blur_prob`, `aug.jpeg_prob`) through `genimage_fast.degrade.cnnspot`:
   per image, blur with probability p_blur at sigma ~ U(0, blur_sigma_max), then JPEG with probability
   p_jpeg at a quality drawn uniformly from `jpeg_quality` = [lo, hi] (CNNDetection
   `data/datasets.py`). The original applies them before its random crop, we after the loader's.
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
   (timm's `num_splits`).

Randomness: every draw comes from the caller's torch.Generator (a per-batch seed for the
parameter draws, the generator itself for noise), so a run resumed from a checkpoint that saved the
generator repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from genimage_fast.config import AugConfig, LossConfig
from genimage_fast.errors import GenImageError
from genimage_fast.models.common import IMAGENET_MEAN, IMAGENET_STD
from genimage_fast.registry import Registry

# An op maps a uint8 batch [K, 3, H, W] with per-image magnitudes m [K] (0..10) and signs s [K] (+-1,
# timm's _randomly_negate) to a uint8 batch, so each op runs once per batch on the images that drew it.
Op = Callable[[torch.Tensor, np.ndarray, np.ndarray], torch.Tensor]
OPS: Registry[Op] = Registry("augmentation op")

_LEVEL_DENOM = 10.0  # timm: magnitudes are on a 0..10 scale
_FILL = [round(255 * m) for m in IMAGENET_MEAN]  # timm's img_mean fill for geometric ops


def _per_image(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """[K] numpy -> float32 [K, 1, 1, 1] on the batch's device."""
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=like.device).view(-1, 1, 1, 1)


def _blend(img: torch.Tensor, degenerate: torch.Tensor, factor: np.ndarray) -> torch.Tensor:
    """PIL ImageEnhance / torchvision _blend: factor·img + (1 - factor)·degenerate, clamped, truncated."""
    f = _per_image(factor, img)
    return (img.float() * f + degenerate * (1.0 - f)).clamp_(0, 255).to(torch.uint8)


def _gray_floor(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.float().unbind(dim=1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).floor_().unsqueeze(1)


def _sharpness(img: torch.Tensor, factor: np.ndarray) -> torch.Tensor:
    """PIL's SMOOTH-kernel sharpness (torchvision's version): borders kept, interior blended."""
    if img.shape[-1] <= 2 or img.shape[-2] <= 2:
        return img
    kernel = torch.full((3, 3), 1.0 / 13.0, device=img.device)
    kernel[1, 1] = 5.0 / 13.0
    x = img.float()
    blurred = F.conv2d(x, kernel.expand(3, 1, 3, 3), groups=3).round_()
    out = x.clone()
    inner = out[..., 1:-1, 1:-1]
    inner.add_((blurred - inner) * (1.0 - _per_image(factor, img)))
    return out.clamp_(0, 255).to(torch.uint8)


def _posterize(img: torch.Tensor, bits: np.ndarray) -> torch.Tensor:
    keep = np.clip(bits, 0, 8).astype(np.int64)
    mask = torch.as_tensor((255 << (8 - keep)) & 255, device=img.device, dtype=torch.uint8).view(-1, 1, 1, 1)
    return img & mask


def _solarize(img: torch.Tensor, thresh: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(thresh, device=img.device, dtype=torch.int16).view(-1, 1, 1, 1)
    return torch.where(img.to(torch.int16) >= t, 255 - img, img)


def _solarize_add(img: torch.Tensor, add: np.ndarray, thresh: int = 128) -> torch.Tensor:
    a = torch.as_tensor(add, device=img.device, dtype=torch.int16).view(-1, 1, 1, 1)
    return torch.where(img < thresh, (img.to(torch.int16) + a).clamp_(max=255).to(torch.uint8), img)


def _pil_affine(img: torch.Tensor, coeffs: np.ndarray) -> torch.Tensor:
    """PIL `Image.transform(AFFINE, (a, b, c, d, e, f))` per image: output point (X, Y) samples the
    input at (aX + bY + c, dX + eY + f), pixel centres at +0.5, bilinear, fill = timm's img_mean."""
    k, _, h, w = img.shape
    m = np.zeros((k, 3, 3))
    m[:, :2, :] = coeffs.reshape(k, 2, 3)
    m[:, 2, 2] = 1.0
    to_pixels = np.array([[w / 2, 0, w / 2], [0, h / 2, h / 2], [0, 0, 1.0]])  # normalised -> pixel
    to_norm = np.linalg.inv(to_pixels)
    theta = torch.as_tensor((to_norm @ m @ to_pixels)[:, :2], dtype=torch.float32, device=img.device)
    grid = F.affine_grid(theta, [k, 4, h, w], align_corners=False)
    x = torch.cat([img.float(), torch.ones_like(img[:, :1], dtype=torch.float32)], dim=1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = out[:, 3:]
    fill = torch.tensor(_FILL, dtype=torch.float32, device=img.device).view(1, 3, 1, 1)
    return (out[:, :3] + (1.0 - inside) * fill).round_().clamp_(0, 255).to(torch.uint8)


def _rotate(img: torch.Tensor, degrees: np.ndarray) -> torch.Tensor:
    """PIL Image.rotate (counter-clockwise, about the centre), as timm calls it."""
    h, w = img.shape[-2:]
    cx, cy = w / 2.0, h / 2.0
    a = -np.radians(degrees)
    cos, sin = np.cos(a), np.sin(a)
    coeffs = np.stack([cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy], axis=1)
    return _pil_affine(img, coeffs)


def _affine_rows(n: int, b: np.ndarray | float = 0.0, c: np.ndarray | float = 0.0,
                 d: np.ndarray | float = 0.0, f: np.ndarray | float = 0.0) -> np.ndarray:
    one, zero = np.ones(n), np.zeros(n)
    return np.stack([one, zero + b, zero + c, zero + d, one, zero + f], axis=1)


def _enhance(m: np.ndarray) -> np.ndarray:
    return m / _LEVEL_DENOM * 1.8 + 0.1


def _enhance_increasing(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    return 1.0 + s * (m / _LEVEL_DENOM * 0.9)


def _contrast(img: torch.Tensor, factor: np.ndarray) -> torch.Tensor:
    return _blend(img, _gray_floor(img).mean(dim=(1, 2, 3), keepdim=True), factor)


def _brightness(img: torch.Tensor, factor: np.ndarray) -> torch.Tensor:
    return _blend(img, torch.zeros((), device=img.device), factor)


def _color(img: torch.Tensor, factor: np.ndarray) -> torch.Tensor:
    return _blend(img, _gray_floor(img), factor)


# Level-to-argument mappings: timm auto_augment.py LEVEL_TO_ARG.
OPS.add("AutoContrast", lambda img, m, s: TF.autocontrast(img))
OPS.add("Equalize", lambda img, m, s: TF.equalize(img))
OPS.add("Invert", lambda img, m, s: TF.invert(img))
OPS.add("Rotate", lambda img, m, s: _rotate(img, s * m / _LEVEL_DENOM * 30.0))
OPS.add("Posterize", lambda img, m, s: _posterize(img, (m / _LEVEL_DENOM * 4).astype(int)))
OPS.add("PosterizeIncreasing", lambda img, m, s: _posterize(img, 4 - (m / _LEVEL_DENOM * 4).astype(int)))
OPS.add("Solarize", lambda img, m, s: _solarize(img, (m / _LEVEL_DENOM * 256).astype(int)))
OPS.add("SolarizeIncreasing", lambda img, m, s: _solarize(img, 256 - (m / _LEVEL_DENOM * 256).astype(int)))
OPS.add("SolarizeAdd", lambda img, m, s: _solarize_add(img, (m / _LEVEL_DENOM * 110).astype(int)))
OPS.add("Color", lambda img, m, s: _color(img, _enhance(m)))
OPS.add("ColorIncreasing", lambda img, m, s: _color(img, _enhance_increasing(m, s)))
OPS.add("Contrast", lambda img, m, s: _contrast(img, _enhance(m)))
OPS.add("ContrastIncreasing", lambda img, m, s: _contrast(img, _enhance_increasing(m, s)))
OPS.add("Brightness", lambda img, m, s: _brightness(img, _enhance(m)))
OPS.add("BrightnessIncreasing", lambda img, m, s: _brightness(img, _enhance_increasing(m, s)))
OPS.add("Sharpness", lambda img, m, s: _sharpness(img, _enhance(m)))
OPS.add("SharpnessIncreasing", lambda img, m, s: _sharpness(img, _enhance_increasing(m, s)))
OPS.add("ShearX", lambda img, m, s: _pil_affine(img, _affine_rows(len(m), b=s * m / _LEVEL_DENOM * 0.3)))
OPS.add("ShearY", lambda img, m, s: _pil_affine(img, _affine_rows(len(m), d=s * m / _LEVEL_DENOM * 0.3)))
OPS.add("TranslateXRel", lambda img, m, s: _pil_affine(
    img, _affine_rows(len(m), c=s * m / _LEVEL_DENOM * 0.45 * img.shape[-1])))
OPS.add("TranslateYRel", lambda img, m, s: _pil_affine(
    img, _affine_rows(len(m), f=s * m / _LEVEL_DENOM * 0.45 * img.shape[-2])))

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


def apply_grouped(images: torch.Tensor, choice: np.ndarray, names: tuple[str, ...], magnitudes: np.ndarray,
                  signs: np.ndarray) -> torch.Tensor:
    """Image i gets op names[choice[i]] (choice -1: unchanged); each op runs once on its images."""
    out = images
    for j, name in enumerate(names):
        idx = np.flatnonzero(choice == j)
        if idx.size == 0:
            continue
        if out is images:
            out = images.clone()
        sel = torch.as_tensor(idx, device=images.device)
        out[sel] = OPS.get(name)(images[sel], magnitudes[idx], signs[idx])
    return out


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

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n = images.shape[0]
        for _ in range(self.num_layers):  # ops drawn with replacement, each applied with prob
            choice = rng.integers(0, len(self.ops), n)
            applied = rng.random(n) <= self.prob
            magnitudes = _magnitudes(self.magnitude, self.mstd, self.mmax, n, rng)
            images = apply_grouped(images, np.where(applied, choice, -1), self.ops, magnitudes, _signs(n, rng))
        return images


@dataclass(frozen=True)
class AugMix:
    """timm's AugMixAugment (non-blended): Dirichlet-weighted chains of 1-3 ops, Beta-blended with the image."""

    magnitude: float = 3.0
    width: int = 3
    depth: int = -1
    alpha: float = 1.0

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n = images.shape[0]
        weights = _per_image(rng.dirichlet([self.alpha] * self.width, size=n).T.reshape(-1), images)
        weights = weights.view(self.width, n, 1, 1, 1)
        m = _per_image(rng.beta(self.alpha, self.alpha, size=n), images)
        mixed = torch.zeros(images.shape, dtype=torch.float32, device=images.device)
        for w in range(self.width):
            depth = np.full(n, self.depth) if self.depth > 0 else rng.integers(1, 4, n)
            chain = images
            for step in range(int(depth.max())):
                choice = np.where(depth > step, rng.integers(0, len(AUGMIX_OPS), n), -1)
                magnitudes = _magnitudes(self.magnitude, float("inf"), 10.0, n, rng)
                chain = apply_grouped(chain, choice, AUGMIX_OPS, magnitudes, _signs(n, rng))
            mixed += weights[w] * chain.float()
        mixed = mixed.clamp_(0, 255).to(torch.uint8).float()  # timm: np.clip then astype(uint8)
        return (images.float() * (1.0 - m) + mixed * m).round_().clamp_(0, 255).to(torch.uint8)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def random_erase_(x: torch.Tensor, prob: float, generator: torch.Generator, rng: np.random.Generator,
                  start: int = 0) -> torch.Tensor:
    """timm RandomErasing (mode 'pixel', one box) in place on float [N, 3, H, W] in [0, 1], from `start`."""
    n, c, h, w = x.shape
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(c, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(c, 1, 1)
    log_ratio = (math.log(0.3), math.log(1 / 0.3))
    for i in range(start, n):
        if rng.random() > prob:
            continue
        for _ in range(10):
            area = rng.uniform(0.02, 1 / 3) * h * w
            ratio = math.exp(rng.uniform(*log_ratio))
            eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if ew < w and eh < h:
                top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
                noise = torch.randn((c, eh, ew), generator=generator, device=generator.device).to(x)
                x[i, :, top:top + eh, left:left + ew] = (mean + std * noise).clamp(0.0, 1.0)
                break
    return x


def _seeded_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator for this batch's parameter draws, seeded from the torch generator."""
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item()
    return np.random.default_rng(seed)


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

    def _cnnspot(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from genimage_fast import degrade

        c = self.cfg
        return degrade.cnnspot(images, p_blur=c.blur_prob, p_jpeg=c.jpeg_prob, generator=generator,
                               sigma_max=c.blur_sigma_max, quality=tuple(c.jpeg_quality))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"augment expects uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        c = self.cfg
        if c.blur_prob > 0 or c.jpeg_prob > 0:
            images = self._cnnspot(images, generator)
        rng = _seeded_rng(generator)
        if self.splits > 1:
            assert self.view is not None
            views = [images] + [self.view(images, rng) for _ in range(self.splits - 1)]
            images, labels = torch.cat(views), labels.repeat(self.splits)
        elif self.randaugment is not None:
            images = self.randaugment(images, rng)
        x = images.float().div_(255.0)
        if c.random_erase > 0:
            start = x.shape[0] // self.splits if self.splits > 1 else 0
            random_erase_(x, c.random_erase, generator, rng, start=start)
        return x, labels

    def __repr__(self) -> str:
        return (f"TrainAugment(splits={self.splits}, randaugment={self.randaugment}, augmix={self.augmix}, "
                f"random_erase={self.cfg.random_erase}, blur={self.cfg.blur_prob}, jpeg={self.cfg.jpeg_prob})")


def build_train_augment(aug_cfg: AugConfig, loss_cfg: LossConfig) -> TrainAugment:
    """The training augmentation for these config sections (validated here: bad values raise now)."""
    return TrainAugment(aug_cfg, loss_cfg)
