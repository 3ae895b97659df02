"""NPR's transforms against torchvision calls as chuangchuangtan/NPR-DeepfakeDetection writes them:
data/datasets.py binary_dataset (train: `transforms.Resize((opt.loadSize, opt.loadSize))`,
`transforms.RandomCrop(opt.cropSize)`, `transforms.RandomHorizontalFlip()`; val: Resize + `CenterCrop`),
options/base_options.py `--loadSize 256 --cropSize 224`.

"npr_genimage" against the README's GenImage recipe (README.md:183-216 at 73cde1c, added in e2dbbe6):
its translate_duplicate copied verbatim, then torchvision's own RandomCrop / RandomHorizontalFlip /
CenterCrop objects, with torch's draws fed from the numpy generator our transform gets.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
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


# chuangchuangtan/NPR-DeepfakeDetection README.md:196-210 (commit e2dbbe6), as printed there.
def translate_duplicate(img, cropSize):  # noqa: N803  (the original's names)
    if min(img.size) < cropSize:
        width, height = img.size

        new_width = width * math.ceil(cropSize/width)
        new_height = height * math.ceil(cropSize/height)

        new_img = Image.new('RGB', (new_width, new_height))
        for i in range(0, new_width, width):
            for j in range(0, new_height, height):
                new_img.paste(img, (i, j))
        return new_img
    else:
        return img


def genimage_compose(train: bool, crop: int) -> transforms.Compose:
    """README.md:185-194: `# rz_func,` left out, translate_duplicate, then data/datasets.py:24-34's crop_func
    (isTrain: RandomCrop(cropSize); no_crop False: CenterCrop(cropSize)) and flip_func (isTrain and not
    no_flip: RandomHorizontalFlip()); ToTensor/Normalize are the model's (it normalises inside)."""
    steps = [transforms.Lambda(lambda img: translate_duplicate(img, crop))]
    if train:
        return transforms.Compose([*steps, transforms.RandomCrop(crop), transforms.RandomHorizontalFlip()])
    return transforms.Compose([*steps, transforms.CenterCrop(crop)])


# (w, h): short side under the crop on one or both sides, tiling to exactly the crop (no crop draw),
# at least the crop (no tiling), and larger
GENIMAGE_SIZES_224 = ((128, 128), (112, 112), (100, 60), (500, 150), (150, 333), (224, 224), (256, 256),
                      (300, 250), (333, 500))
GENIMAGE_SIZES_32 = ((7, 5), (16, 16), (31, 40), (32, 32), (33, 32), (45, 20), (64, 48), (10, 100))


def test_translate_duplicate_is_the_readmes():
    from genimage_fast.loaders.npr_transforms import translate_duplicate as ours

    for w, h in GENIMAGE_SIZES_224 + ((223, 1000), (1, 1)):
        img = photo(w, h, w * h)
        ref = np.asarray(translate_duplicate(Image.fromarray(img), 224))
        got = ours(img, 224)
        assert got.shape == ref.shape and np.array_equal(got, ref), (w, h)


@pytest.mark.parametrize("crop,sizes", [(224, GENIMAGE_SIZES_224), (32, GENIMAGE_SIZES_32)])
def test_npr_genimage_eval_equals_tile_then_centre_crop(crop, sizes):
    load_transforms()
    ours = EVAL_TRANSFORMS.get("npr_genimage")(image_size=crop)
    ref = genimage_compose(False, crop)
    for w, h in sizes:
        img = photo(w, h, w + h)
        got = ours(img, None)
        assert got.shape == (crop, crop, 3) and got.flags.c_contiguous
        assert np.array_equal(got, np.asarray(ref(Image.fromarray(img)))), (w, h)


@pytest.mark.parametrize("crop,sizes", [(224, GENIMAGE_SIZES_224), (32, GENIMAGE_SIZES_32)])
def test_npr_genimage_train_equals_tile_random_crop_flip_draw_for_draw(crop, sizes, monkeypatch):
    """torchvision's RandomCrop.get_params (torch.randint for top, then left; none when the image is the
    crop) and RandomHorizontalFlip (torch.rand(1) < p), their torch draws taken from a numpy generator
    seeded as ours: the same calls in the same order give the same pixels."""
    load_transforms()
    ours = TRAIN_TRANSFORMS.get("npr_genimage")(image_size=crop)
    ref = genimage_compose(True, crop)
    draws: list[np.random.Generator] = []
    flipped: list[bool] = []

    def rand(*size):
        value = float(draws[0].random())
        flipped.append(value < 0.5)
        return torch.tensor([value])

    monkeypatch.setattr(torch, "randint", lambda low, high, size: torch.tensor([int(draws[0].integers(low, high))]))
    monkeypatch.setattr(torch, "rand", rand)
    for rep in range(3):
        for seed, (w, h) in enumerate(sizes):
            img = photo(w, h, seed)
            got = ours(img, np.random.default_rng([rep, seed]))
            draws[:] = [np.random.default_rng([rep, seed])]
            want = np.asarray(ref(Image.fromarray(img)))
            assert got.shape == (crop, crop, 3) and got.flags.c_contiguous
            assert np.array_equal(got, want), (crop, w, h, rep)
    assert set(flipped) == {True, False}  # both flip branches met


def test_npr_genimage_transforms_pickle_and_need_a_generator():
    load_transforms()
    for registry in (TRAIN_TRANSFORMS, EVAL_TRANSFORMS):
        t = registry.get("npr_genimage")(image_size=32)
        assert pickle.loads(pickle.dumps(t)) == t
    with pytest.raises(ValueError, match="npr_genimage"):
        TRAIN_TRANSFORMS.get("npr_genimage")(image_size=32)(photo(40, 40, 0), None)


def test_npr_genimage_recipe_pins_the_readme():
    """recipes/npr_genimage.yaml against README.md:224 (`--batch_size 32 --lr 0.0002 --niter 1 --cropSize 224
    --classes sdv4`), README.md:213 (seed 70), networks/trainer.py:16-26 (resnet50(pretrained=False), BCEWithLogitsLoss,
    Adam(lr, betas=(beta1=0.9, 0.999)) without weight decay), train.py:94 (no lr change within one epoch)."""
    from genimage_fast.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "recipes" / "npr_genimage.yaml")
    assert cfg.recipe == "npr_genimage" and cfg.model.name == "npr" and cfg.model.pretrained == ""
    assert cfg.data.generators == ["sdv14"] and cfg.data.val_generators == ["sdv14"]
    assert (cfg.data.train_transform, cfg.data.eval_transform, cfg.data.image_size) == ("npr_genimage",) * 2 + (224,)
    assert cfg.data.transform_options == {}
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay) == ("adam", 2e-4, [0.9, 0.999], 0.0)
    assert cfg.optim.eps == 1e-8  # torch.optim.Adam's default, which trainer.py leaves
    assert cfg.schedule.name == "constant" and cfg.loss.name == "bce"
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.seed) == (1, 32, 70)
    assert cfg.train.global_batch_size in (0, 32) and cfg.train.grad_accum == 1
