"""NPR's transforms against torchvision calls as chuangchuangtan/NPR-DeepfakeDetection writes them:
data/datasets.py binary_dataset (train: `transforms.Resize((opt.loadSize, opt.loadSize))`,
`transforms.RandomCrop(opt.cropSize)`, `transforms.RandomHorizontalFlip()`; val: Resize + `CenterCrop`),
options/base_options.py `--loadSize 256 --cropSize 224`.
"""

from __future__ import annotations

import numpy as np
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import transforms

from genimage_fast.loaders.pipelines import EVAL_TRANSFORMS, TRAIN_TRANSFORMS, load_transforms


def photo(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def test_npr_eval_equals_resize_then_centre_crop():
    load_transforms()
    ours = EVAL_TRANSFORMS.get("npr")(image_size=224)
    ref = transforms.Compose([transforms.Resize((256, 256)), transforms.CenterCrop(224)])
    for w, h in ((512, 512), (500, 375), (128, 128), (1024, 1024)):
        img = photo(w, h, w + h)
        assert np.array_equal(ours(img, None), np.asarray(ref(Image.fromarray(img))))


def test_npr_train_equals_resize_random_crop_flip_with_the_same_draws():
    load_transforms()
    ours = TRAIN_TRANSFORMS.get("npr")(image_size=224)
    for seed, (w, h) in enumerate(((512, 512), (500, 375), (256, 256), (333, 500))):
        img = photo(w, h, seed)
        got = ours(img, np.random.default_rng(seed))
        draws = np.random.default_rng(seed)  # the same draws in the original's order: top, left, flip
        resized = transforms.Resize((256, 256))(Image.fromarray(img))
        top, left = int(draws.integers(0, 256 - 224 + 1)), int(draws.integers(0, 256 - 224 + 1))
        ref = TF.crop(resized, top, left, 224, 224)
        if float(draws.random()) < 0.5:
            ref = TF.hflip(ref)
        assert np.array_equal(got, np.asarray(ref)), seed
