"""The originals' training transforms on a full decoded image (TRAIN_TRANSFORMS, see `pipelines.py`).

Each reproduces the calls of the code GenImage ran (GenImage-Dataset/GenImage `detector_codes/`),
with the libraries it used, in its order; the originals' `random` / `torch` draws come from the
per-sample numpy Generator instead, one draw per original draw and in the same order (a draw the
original skips, e.g. `choice` over a one-element list, is skipped here too):

- "cnnspot" (CNNDetection-master/data/datasets.py:23-134): PIL resize of the short side to
  `load_size` (torchvision `TF.resize`, bilinear) -> `data_augment`: with `blur_prob`, scipy
  `gaussian_filter` on each uint8 plane in place (truncating) at sigma ~ U(blur_sig); with `jpg_prob`,
  a JPEG round trip by cv2 or PIL (`choice(jpg_method)`) at `choice(jpg_qual)` -> `RandomCrop(224)`
  -> `RandomHorizontalFlip()`. The augmentation comes before the crop, so the JPEG grid is not
  aligned with the crop. Defaults: README's "Blur+JPEG(0.5)" command (--blur_prob 0.5 --blur_sig
  0.0,3.0 --jpg_prob 0.5 --jpg_method cv2,pil --jpg_qual 30,100), which is supplement B's setting.
- "autogan" (AutoGAN-master/code/cycleGAN_dataset.py:119-121, GAN_Detection_Train.py:184-194): cv2
  squash to 256x256 (`cv2.resize` default INTER_LINEAR, no antialias), then the `--data_augment`
  crop: x = randint(0, 32), y = randint(0, 32), `im[y:y+224, x:x+224]`; no flip. `random_crop=False`
  is the original without `--data_augment` (the fixed `[16:240]` crop).
- "f3net" (yyk-wew/F3Net utils.py:22, 46-53; GenImage's F3Net-main ships only the model): PIL
  `image.resize((299, 299))` (Pillow's default filter for RGB, bicubic since Pillow 7), then
  `RandomHorizontalFlip(p=0.5)`.
- "gramnet" (Global_Texture_Enhancement.../stylegan-ffhq/main.py:36-42): size = randint(64, 256),
  `cv2.resize(im, (size, size))`, `cv2.resize(im, (512, 512))` (the original's input is 512; here
  `image_size`), no flip.

One deviation everywhere: the originals fed cv2's BGR or PIL's RGB as they read it; these take and
return RGB (every operation here is per channel or colour-order symmetric: resize, blur, JPEG by cv2
is given BGR as the original's `cv2_jpg` does). The models whose originals read with cv2 (spec,
gramnet) reverse the planes to BGR inside themselves, so their networks see the original's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.eval_transforms import PIL_FILTERS, short_side_size  # CNNDetection's rz_dict
from genimage_fast.loaders.pipelines import TRAIN_TRANSFORMS, ImageTransform, build_transform


def _need_rng(rng: np.random.Generator | None, name: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"train transform {name!r} needs a numpy Generator (pipelines.sample_rng)")
    return rng


def _choice(rng: np.random.Generator, values: Sequence[Any]) -> Any:
    """CNNDetection sample_discrete: the only value without a draw, else random.choice."""
    return values[0] if len(values) == 1 else values[int(rng.integers(len(values)))]


def _continuous(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    """CNNDetection sample_continuous: the value, or random() * (hi - lo) + lo."""
    return float(bounds[0]) if len(bounds) == 1 else float(rng.random()) * (bounds[1] - bounds[0]) + bounds[0]


def _crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """torchvision RandomCrop.get_params: no draw when the image is the crop, else top then left."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"random crop {size} of a {w}x{h} image")
    if (h, w) == (size, size):
        return image
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[top:top + size, left:left + size]


def _flip(image: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """RandomHorizontalFlip(p): `torch.rand(1) < p`, always one draw."""
    return image[:, ::-1] if float(rng.random()) < p else image


def _short_side(image: Image.Image, size: int, resample: int) -> Image.Image:
    """torchvision TF.resize(img, size) on a PIL image: short side -> size, long side truncated."""
    new = short_side_size(*image.size, size)
    return image if new == image.size else image.resize(new, resample)


def cv2_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """CNNDetection cv2_jpg: encode the BGR view at `quality`, decode as colour, back to RGB."""
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ValueError("cv2 could not JPEG-encode the image")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]


def pil_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """CNNDetection pil_jpg: PIL save as JPEG at `quality` (4:2:0, PIL's defaults), reopen."""
    out = BytesIO()
    Image.fromarray(image).save(out, format="jpeg", quality=quality)
    return np.array(Image.open(out))


_JPEG = {"cv2": cv2_jpeg, "pil": pil_jpeg}  # CNNDetection data/datasets.py:122 (jpeg_dict)


def _as_list(value: Any, kind: type, name: str) -> tuple[Any, ...]:
    """A YAML option given as a scalar, a list or CNNDetection's comma string ("cv2,pil", "30,100")."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    try:
        return tuple(kind(v.strip()) if isinstance(v, str) else kind(v) for v in items)
    except (TypeError, ValueError):
        raise GenImageError(f"train transform option {name}: cannot read {value!r} as {kind.__name__} values") from None


def _probability(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise GenImageError(f"train transform option {name} is a probability in [0, 1], got {value}")


@TRAIN_TRANSFORMS.register("cnnspot")
@dataclass(frozen=True)
class CNNSpotTrain:
    """CNNDetection's training pipeline (module docstring); option names are its command-line flags."""

    image_size: int = 224  # --cropSize
    load_size: int = 256  # --loadSize
    rz_interp: Any = "bilinear"  # --rz_interp (one or several, drawn per image)
    blur_prob: float = 0.5  # --blur_prob
    blur_sig: Any = (0.0, 3.0)  # --blur_sig: one sigma, or [lo, hi] uniform
    jpg_prob: float = 0.5  # --jpg_prob
    jpg_method: Any = ("cv2", "pil")  # --jpg_method
    jpg_qual: Any = (30, 100)  # --jpg_qual: one quality, or [lo, hi] = every integer in lo..hi
    hflip: float = 0.5  # RandomHorizontalFlip() unless --no_flip (then 0)
    qualities: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        interp = _as_list(self.rz_interp, str, "rz_interp")
        sig = _as_list(self.blur_sig, float, "blur_sig")
        methods = _as_list(self.jpg_method, str, "jpg_method")
        qual = _as_list(self.jpg_qual, int, "jpg_qual")
        bad = [m for m in interp if m not in PIL_FILTERS] + [m for m in methods if m not in _JPEG]
        if bad:
            raise GenImageError(f"cnnspot train transform: unknown rz_interp/jpg_method {bad[0]!r} "
                                f"(rz_interp: {', '.join(PIL_FILTERS)}; jpg_method: cv2, pil)")
        if len(sig) not in (1, 2) or min(sig) < 0:
            raise GenImageError(f"cnnspot train transform: blur_sig is one sigma or [lo, hi], >= 0; "
                                f"got {self.blur_sig!r}")
        if len(qual) not in (1, 2) or not all(1 <= q <= 100 for q in qual) or qual[0] > qual[-1]:
            raise GenImageError(f"cnnspot train transform: jpg_qual is one quality or [lo, hi] within 1..100; "
                                f"got {self.jpg_qual!r}")
        for name in ("blur_prob", "jpg_prob", "hflip"):
            _probability(getattr(self, name), name)
        if self.load_size < self.image_size:
            raise GenImageError(f"cnnspot train transform: load_size {self.load_size} < crop {self.image_size}")
        for name, value in (("rz_interp", interp), ("blur_sig", sig), ("jpg_method", methods)):
            object.__setattr__(self, name, value)
        # CNNDetection options/base_options.py:106-108: two values mean every integer in lo..hi.
        object.__setattr__(self, "jpg_qual", qual)
        object.__setattr__(self, "qualities", tuple(range(qual[0], qual[1] + 1)) if len(qual) == 2 else qual)

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        rng = _need_rng(rng, "cnnspot")
        resample = PIL_FILTERS[_choice(rng, self.rz_interp)]
        img = np.array(_short_side(Image.fromarray(image), self.load_size, resample))
        if float(rng.random()) < self.blur_prob:
            sigma = _continuous(rng, self.blur_sig)
            for c in range(3):  # in place on uint8: scipy truncates after each 1-D pass, as the original
                gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=sigma)
        if float(rng.random()) < self.jpg_prob:
            method = _choice(rng, self.jpg_method)
            img = _JPEG[method](img, int(_choice(rng, self.qualities)))
        img = _flip(_crop(img, self.image_size, rng), self.hflip, rng)
        return np.ascontiguousarray(img)


@TRAIN_TRANSFORMS.register("autogan")
@dataclass(frozen=True)
class AutoGANTrain:
    """AutoGAN (Spec): cv2 squash to load_size, random (or centre) image_size crop, no flip."""

    image_size: int = 224
    load_size: int = 256
    random_crop: bool = True  # GAN_Detection_Train.py --data_augment; False: the fixed [16:240] crop

    def __post_init__(self) -> None:
        if self.load_size < self.image_size:
            raise GenImageError(f"autogan train transform: load_size {self.load_size} < crop {self.image_size}")

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        s, size = self.load_size, self.image_size
        if image.shape[:2] != (s, s):
            image = cv2.resize(image, (s, s))
        if self.random_crop:
            rng = _need_rng(rng, "autogan")
            x = int(rng.integers(0, s - size + 1))  # random.randint(0, 32), inclusive, x first
            y = int(rng.integers(0, s - size + 1))
        else:
            x = y = (s - size) // 2
        return np.array(image[y:y + size, x:x + size])  # a writable copy, whatever the input was


@TRAIN_TRANSFORMS.register("f3net")
@dataclass(frozen=True)
class F3NetTrain:
    """F3Net: PIL squash to image_size with Pillow's default filter (bicubic), horizontal flip."""

    image_size: int = 299
    hflip: float = 0.5  # utils.py:22 RandomHorizontalFlip(p=0.5)

    def __post_init__(self) -> None:
        _probability(self.hflip, "hflip")

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        rng = _need_rng(rng, "f3net")
        img = np.array(Image.fromarray(image).resize((self.image_size, self.image_size), Image.BICUBIC))
        return np.ascontiguousarray(_flip(img, self.hflip, rng))


@TRAIN_TRANSFORMS.register("gramnet")
@dataclass(frozen=True)
class GramNetTrain:
    """GramNet's resolution augmentation: cv2 squash to a random size in [min_size, max_size], then to
    image_size (the original: 512); no flip."""

    image_size: int = 512
    min_size: int = 64
    max_size: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min_size <= self.max_size:
            raise GenImageError(f"gramnet train transform: need 1 <= min_size <= max_size, got "
                                f"{self.min_size}, {self.max_size}")

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        rng = _need_rng(rng, "gramnet")
        size = int(rng.integers(self.min_size, self.max_size + 1))  # random.randint(64, 256), inclusive
        small = cv2.resize(image, (size, size))
        return np.ascontiguousarray(cv2.resize(small, (self.image_size, self.image_size)))


def build_train_transform(name: str, image_size: int, options: dict[str, Any] | None = None) -> ImageTransform:
    """TRAIN_TRANSFORMS[name](image_size=..., **options); an unknown option is one GenImageError line."""
    return build_transform(TRAIN_TRANSFORMS, name, image_size, options)
