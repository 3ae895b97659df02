"""NPR's transforms (chuangchuangtan/NPR-DeepfakeDetection data/datasets.py `binary_dataset`).

- train "npr": `transforms.Resize((loadSize, loadSize))` (a PIL squash to 256x256, bilinear, which
  PIL antialiases) -> `RandomCrop(cropSize=224)` -> `RandomHorizontalFlip()`; its blur/JPEG
  `data_augment` is commented out there, so there is none.
- eval "npr": the validation set of its train.py (`get_val_opt`: no_resize=False, no_crop=False):
  the same squash, then `CenterCrop(224)`. (Its test.py scores whole images without resizing or
  cropping, batch by batch of equal sizes; a fixed-size batch needs the validation transform.)
"""

from __future__ import annotations

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
