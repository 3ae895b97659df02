"""NPR's transforms (chuangchuangtan/NPR-DeepfakeDetection data/datasets.py `binary_dataset`).

- train "npr": `transforms.Resize((loadSize, loadSize))` (a PIL squash to 256x256, bilinear, which
  PIL antialiases) -> `RandomCrop(cropSize=224)` -> `RandomHorizontalFlip()`; its blur/JPEG
  `data_augment` is commented out there, so there is none.
- eval "npr": the validation set of its train.py (`get_val_opt`: no_resize=False, no_crop=False):
  the same squash, then `CenterCrop(224)`. (Its test.py scores whole images without resizing or
  cropping, batch by batch of equal sizes; a fixed-size batch needs the validation transform.)
- train / eval "npr_genimage": the recipe of the README's "GenImage" section (commit e2dbbe6, README.md
  lines 178-221 at 73cde1c), its step (1): binary_dataset's Compose with `# rz_func,` commented out
  and `transforms.Lambda(lambda img: translate_duplicate(img, opt.cropSize))` in its place, then the
  same crop_func and flip_func: train `RandomCrop(224)` -> `RandomHorizontalFlip()`, eval (train.py's
  testmodel with no_crop=False, README step (3)) `CenterCrop(224)`. No resize at all: images whose
  short side is at least 224 are cropped at full size. The function is printed in the README only;
  no commit of the repository's data/datasets.py contains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from genimage_fast.loaders.eval_transforms import centre_crop
from genimage_fast.loaders.pipelines import EVAL_TRANSFORMS, TRAIN_TRANSFORMS
from genimage_fast.loaders.train_transforms import _crop, _flip, _need_rng

LOAD_SIZE = 256  # base_options.py: --loadSize 256


def squash(image: np.ndarray, size: int) -> np.ndarray:
    """torchvision Resize((size, size)) on a PIL image: PIL's bilinear resize of both sides."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


@TRAIN_TRANSFORMS.register("npr")
@dataclass(frozen=True)
class NPRTrain:
    image_size: int = 224  # --cropSize
    load_size: int = LOAD_SIZE
    hflip: float = 0.5  # RandomHorizontalFlip() unless --no_flip

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        rng = _need_rng(rng, "npr")
        img = _crop(squash(image, self.load_size), self.image_size, rng)
        return np.ascontiguousarray(_flip(img, self.hflip, rng))


@EVAL_TRANSFORMS.register("npr")
@dataclass(frozen=True)
class NPREval:
    image_size: int = 224
    load_size: int = LOAD_SIZE

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        return centre_crop(squash(image, self.load_size), self.image_size)


def translate_duplicate(image: np.ndarray, crop_size: int) -> np.ndarray:
    """NPR README "GenImage" (1) `translate_duplicate(img, cropSize)`: when the short side is under
    crop_size, the image pasted at every (i, j) step of its own size into an `Image.new('RGB', ...)` of
    width * ceil(cropSize / width) by height * ceil(cropSize / height), which the pastes cover
    exactly: a tiling; otherwise the image itself."""
    h, w = image.shape[:2]
    if min(w, h) >= crop_size:
        return image
    return np.tile(image, (math.ceil(crop_size / h), math.ceil(crop_size / w), 1))


@TRAIN_TRANSFORMS.register("npr_genimage")
@dataclass(frozen=True)
class NPRGenImageTrain:
    image_size: int = 224  # --cropSize 224 (the README's command), also translate_duplicate's cropSize
    hflip: float = 0.5  # RandomHorizontalFlip() unless --no_flip

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        rng = _need_rng(rng, "npr_genimage")
        img = _crop(translate_duplicate(image, self.image_size), self.image_size, rng)
        return np.ascontiguousarray(_flip(img, self.hflip, rng))


@EVAL_TRANSFORMS.register("npr_genimage")
@dataclass(frozen=True)
class NPRGenImageEval:
    image_size: int = 224

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        # after the tiling both sides are >= image_size: CenterCrop never pads here
        return centre_crop(translate_duplicate(image, self.image_size), self.image_size)
