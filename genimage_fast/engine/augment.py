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
   Per sample: each image gets its own ops and magnitudes like timm's per-image transform, using
   torchvision.transforms.v2 functional ops on the uint8 tensors on their device.
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
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from genimage_fast.config import AugConfig, LossConfig
from genimage_fast.errors import GenImageError
from genimage_fast.models.common import IMAGENET_MEAN, IMAGENET_STD
from genimage_fast.registry import Registry

Op = Callable[[torch.Tensor, float, np.random.Generator], torch.Tensor]
OPS: Registry[Op] = Registry("augmentation op")

_LEVEL_DENOM = 10.0  # timm: magnitudes are on a 0..10 scale
_FILL = [round(255 * m) for m in IMAGENET_MEAN]  # timm's img_mean fill for geometric ops
_BILINEAR = InterpolationMode.BILINEAR


def _signed(value: float, rng: np.random.Generator) -> float:
    """timm's _randomly_negate."""
    return -value if rng.random() > 0.5 else value


def _enhance(m: float) -> float:
    return m / _LEVEL_DENOM * 1.8 + 0.1


def _enhance_increasing(m: float, rng: np.random.Generator) -> float:
    return 1.0 + _signed(m / _LEVEL_DENOM * 0.9, rng)


def _affine(img: torch.Tensor, translate: tuple[float, float] = (0.0, 0.0),
            shear: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    # PIL's affine (timm) maps around the top-left corner; so does center=[0, 0] here.
    return TF.affine(img, angle=0.0, translate=list(translate), scale=1.0, shear=list(shear),
                     interpolation=_BILINEAR, fill=_FILL, center=[0.0, 0.0])


def _solarize_add(img: torch.Tensor, add: int, thresh: int = 128) -> torch.Tensor:
    return torch.where(img < thresh, (img.int() + add).clamp(max=255).to(torch.uint8), img)


def _posterize(img: torch.Tensor, bits: int) -> torch.Tensor:
    return img if bits >= 8 else TF.posterize(img, max(bits, 0))


def _solarize(img: torch.Tensor, thresh: int) -> torch.Tensor:
    return img if thresh > 255 else TF.solarize(img, float(thresh))


OPS.add("AutoContrast", lambda img, m, rng: TF.autocontrast(img))
OPS.add("Equalize", lambda img, m, rng: TF.equalize(img))
OPS.add("Invert", lambda img, m, rng: TF.invert(img))
OPS.add("Rotate", lambda img, m, rng: TF.rotate(img, _signed(m / _LEVEL_DENOM * 30.0, rng),
                                                 interpolation=_BILINEAR, fill=_FILL))
OPS.add("Posterize", lambda img, m, rng: _posterize(img, int(m / _LEVEL_DENOM * 4)))
OPS.add("PosterizeIncreasing", lambda img, m, rng: _posterize(img, 4 - int(m / _LEVEL_DENOM * 4)))
OPS.add("Solarize", lambda img, m, rng: _solarize(img, int(m / _LEVEL_DENOM * 256)))
OPS.add("SolarizeIncreasing", lambda img, m, rng: _solarize(img, 256 - int(m / _LEVEL_DENOM * 256)))
OPS.add("SolarizeAdd", lambda img, m, rng: _solarize_add(img, int(m / _LEVEL_DENOM * 110)))
OPS.add("Color", lambda img, m, rng: TF.adjust_saturation(img, _enhance(m)))
OPS.add("ColorIncreasing", lambda img, m, rng: TF.adjust_saturation(img, _enhance_increasing(m, rng)))
OPS.add("Contrast", lambda img, m, rng: TF.adjust_contrast(img, _enhance(m)))
OPS.add("ContrastIncreasing", lambda img, m, rng: TF.adjust_contrast(img, _enhance_increasing(m, rng)))
OPS.add("Brightness", lambda img, m, rng: TF.adjust_brightness(img, _enhance(m)))
OPS.add("BrightnessIncreasing", lambda img, m, rng: TF.adjust_brightness(img, _enhance_increasing(m, rng)))
OPS.add("Sharpness", lambda img, m, rng: TF.adjust_sharpness(img, _enhance(m)))
OPS.add("SharpnessIncreasing", lambda img, m, rng: TF.adjust_sharpness(img, _enhance_increasing(m, rng)))
OPS.add("ShearX", lambda img, m, rng: _affine(img, shear=(math.degrees(math.atan(
    _signed(m / _LEVEL_DENOM * 0.3, rng))), 0.0)))
OPS.add("ShearY", lambda img, m, rng: _affine(img, shear=(0.0, math.degrees(math.atan(
    _signed(m / _LEVEL_DENOM * 0.3, rng))))))
# PIL's affine data (1, 0, p, ...) samples the input at x + p, i.e. moves the image by -p.
OPS.add("TranslateXRel", lambda img, m, rng: _affine(img, translate=(
    -_signed(m / _LEVEL_DENOM * 0.45, rng) * img.shape[-1], 0.0)))
OPS.add("TranslateYRel", lambda img, m, rng: _affine(img, translate=(
    0.0, -_signed(m / _LEVEL_DENOM * 0.45, rng) * img.shape[-2])))

# timm auto_augment.py: _RAND_TRANSFORMS, _RAND_INCREASING_TRANSFORMS, _AUGMIX_TRANSFORMS.
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
AUGMIX_OPS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
              "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY",
              "TranslateXRel", "TranslateYRel")


def _magnitude(m: float, mstd: float, mmax: float, rng: np.random.Generator) -> float:
    """timm AugmentOp: Gaussian noise on the magnitude (mstd = inf: uniform in [0, m]), clipped."""
    if mstd == float("inf"):
        m = rng.uniform(0.0, m)
    elif mstd > 0:
        m = rng.normal(m, mstd)
    return float(min(max(m, 0.0), mmax))


@dataclass(frozen=True)
class RandAugment:
    """timm's RandAugment, per image on uint8 [3, H, W] tensors."""

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

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        for name in rng.choice(self.ops, self.num_layers, replace=True):
            if rng.random() > self.prob:
                continue
            img = OPS.get(str(name))(img, _magnitude(self.magnitude, self.mstd, self.mmax, rng), rng)
        return img


@dataclass(frozen=True)
class AugMix:
    """timm's AugMixAugment (non-blended): Dirichlet-weighted chains of 1-3 ops, Beta-blended with the image."""

    magnitude: float = 3.0
    width: int = 3
    depth: int = -1
    alpha: float = 1.0

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        weights = rng.dirichlet([self.alpha] * self.width)
        m = rng.beta(self.alpha, self.alpha)
        mixed = torch.zeros(img.shape, dtype=torch.float32, device=img.device)
        for w in weights:
            depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
            chain = img
            for name in rng.choice(AUGMIX_OPS, depth, replace=True):
                chain = OPS.get(str(name))(chain, _magnitude(self.magnitude, float("inf"), 10.0, rng), rng)
            mixed += float(w) * chain.float()
        mixed = mixed.clamp(0, 255).to(torch.uint8).float()  # timm: np.clip then astype(uint8)
        return (img.float() * (1.0 - m) + mixed * m).round().clamp(0, 255).to(torch.uint8)


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

    def _per_image(self, images: torch.Tensor, fn: Callable[[torch.Tensor, np.random.Generator], torch.Tensor],
                   rng: np.random.Generator) -> torch.Tensor:
        return torch.stack([fn(img, rng) for img in images])

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
            views = [images] + [self._per_image(images, self.view, rng) for _ in range(self.splits - 1)]
            images, labels = torch.cat(views), labels.repeat(self.splits)
        elif self.randaugment is not None:
            images = self._per_image(images, self.randaugment, rng)
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
