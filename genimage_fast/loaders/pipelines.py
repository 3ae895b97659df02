"""Full-image transforms: what each original detector's code does to a fully decoded image.

The box transforms of `transforms.py` (rrc, resize_crop, the default eval crop) reduce to one crop
box plus one antialiased resize, so a decoder can crop while it decodes. The originals' pipelines
are not of that shape (timm's bicubic resize, CNNDetection's no-resize centre crop with padding,
AutoGAN's cv2 squash + fixed crop, F3Net's PIL squash, CNNSpot's blur + JPEG before the crop,
GramNet's resolution augmentation): they take the full decoded image.

Contract (shared by the loaders' plumbing, the eval transforms and the train transforms):

- An entry of EVAL_TRANSFORMS / TRAIN_TRANSFORMS is a factory (usually a frozen dataclass) called
  as `factory(image_size=S, **options)`; the object it returns is picklable (DataLoader workers)
  and callable as `transform(image, rng) -> np.ndarray`:
    image: [H, W, 3] uint8 RGB, the full-size decode of the stored sample (PIL's `.convert("RGB")`);
    rng:   None for eval transforms (deterministic); for train transforms a numpy Generator from
           `sample_rng(seed, epoch, index)`, so a sample's draws depend only on (seed, epoch,
           split index), never on workers, batch composition or rank;
    returns [S, S, 3] uint8 RGB, C-contiguous (train transforms do their own flip, if any).
- Unknown names are a GenImageError with the close matches (the Registry's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from genimage_fast.registry import Registry


class ImageTransform(Protocol):
    def __call__(self, image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray: ...


TransformFactory = Callable[..., ImageTransform]
EVAL_TRANSFORMS: Registry[TransformFactory] = Registry("eval transform")
TRAIN_TRANSFORMS: Registry[TransformFactory] = Registry("train transform")

_SAMPLE_STREAM = 0x7478  # keeps per-sample draws apart from the epoch order and crop-plan streams


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-sample generator of a train transform: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed), int(epoch), int(index), _SAMPLE_STREAM])
