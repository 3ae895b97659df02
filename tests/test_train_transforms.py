"""TRAIN_TRANSFORMS against independent reimplementations of the originals' calls, driven by the same
numpy Generator sequence (each original `random()` / `choice()` / `torch.randint` / `torch.rand` draw
becomes one draw of the generator, in the original's order).

Sources (GenImage-Dataset/GenImage, detector_codes/):
  "CNNDetection" = CNNDetection-master/data/datasets.py, options/base_options.py, README.md
  "AutoGAN"      = AutoGAN-master/code/cycleGAN_dataset.py, GAN_Detection_Train.py
  "GramNet"      = Global_Texture_Enhancement_for_Fake_Face_Detection_in_the-Wild-master/stylegan-ffhq/main.py
  "F3Net"        = yyk-wew/F3Net utils.py (GenImage's F3Net-main ships only f3net.py)
"""

from __future__ import annotations

import pickle
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torchvision.transforms.functional as TF
from PIL import Image
from scipy.ndimage import gaussian_filter

from genimage_fast.config import config_from_dict
from genimage_fast.errors import GenImageError
from genimage_fast.loaders.pipelines import TRAIN_TRANSFORMS, sample_rng
from genimage_fast.loaders.train_transforms import build_train_transform


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth image with texture (JPEG and blur both change it measurably)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / (7 + c) + yy / (11 + 2 * c)) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- CNNSpot


def cnndetection_train(img: Image.Image, opt: SimpleNamespace, rng: np.random.Generator,
                       events: list[str]) -> np.ndarray:
    """CNNDetection binary_dataset (train) for one PIL image, `random`/`choice`/torch draws from `rng`."""

    def random() -> float:
        return float(rng.random())

    def choice(s: list) -> object:
        return s[int(rng.integers(len(s)))]

    # data/datasets.py:82-94
    def sample_continuous(s):
        if len(s) == 1:
            return s[0]
        if len(s) == 2:
            rg = s[1] - s[0]
            return random() * rg + s[0]
        raise ValueError("Length of iterable s should be 1 or 2.")

    def sample_discrete(s):
        if len(s) == 1:
            return s[0]
        return choice(s)

    # data/datasets.py:97-100
    def gaussian_blur(img, sigma):
        gaussian_filter(img[:, :, 0], output=img[:, :, 0], sigma=sigma)
        gaussian_filter(img[:, :, 1], output=img[:, :, 1], sigma=sigma)
        gaussian_filter(img[:, :, 2], output=img[:, :, 2], sigma=sigma)

    # data/datasets.py:103-119
    def cv2_jpg(img, compress_val):
        img_cv2 = img[:, :, ::-1]
        encode_param = [int(cv2.IMWRITE_JPEG_QUALITY), compress_val]
        result, encimg = cv2.imencode('.jpg', img_cv2, encode_param)
        decimg = cv2.imdecode(encimg, 1)
        return decimg[:, :, ::-1]

    def pil_jpg(img, compress_val):
        out = BytesIO()
        img = Image.fromarray(img)
        img.save(out, format='jpeg', quality=compress_val)
        img = Image.open(out)
        img = np.array(img)
        out.close()
        return img

    jpeg_dict = {'cv2': cv2_jpg, 'pil': pil_jpg}

    # data/datasets.py:67-79
    def data_augment(img, opt):
        img = np.array(img)
        if random() < opt.blur_prob:
            sig = sample_continuous(opt.blur_sig)
            gaussian_blur(img, sig)
            events.append("blur")
        if random() < opt.jpg_prob:
            method = sample_discrete(opt.jpg_method)
            qual = sample_discrete(opt.jpg_qual)
            img = jpeg_dict[method](img, qual)
            events.append(method)
        return Image.fromarray(img)

    # data/datasets.py:128-134
    rz_dict = {'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS, 'nearest': Image.NEAREST}

    def custom_resize(img, opt):
        interp = sample_discrete(opt.rz_interp)
        return TF.resize(img, opt.loadSize, interpolation=rz_dict[interp])

    # data/datasets.py:40-49: rz_func, data_augment, RandomCrop(cropSize), RandomHorizontalFlip()
    img = custom_resize(img, opt)
    img = data_augment(img, opt)
    w, h = img.size  # RandomCrop.get_params: i = torch.randint(0, h - th + 1), j = torch.randint(0, w - tw + 1)
    i = int(rng.integers(0, h - opt.cropSize + 1))
    j = int(rng.integers(0, w - opt.cropSize + 1))
    img = TF.crop(img, i, j, opt.cropSize, opt.cropSize)
    if float(rng.random()) < 0.5:  # RandomHorizontalFlip: torch.rand(1) < p
        img = TF.hflip(img)
    return np.array(img)


def cnndetection_opt(**over: object) -> SimpleNamespace:
    """README "Blur+JPEG(0.5)": --blur_prob 0.5 --blur_sig 0.0,3.0 --jpg_prob 0.5 --jpg_method cv2,pil
    --jpg_qual 30,100; base_options.py:29-30 --loadSize 256 --cropSize 224, :18 --rz_interp bilinear;
    base_options.py:103-108 parses them into lists (two qualities -> range(lo, hi + 1))."""
    opt = dict(loadSize=256, cropSize=224, rz_interp=["bilinear"], blur_prob=0.5, blur_sig=[0.0, 3.0], jpg_prob=0.5,
               jpg_method=["cv2", "pil"], jpg_qual=list(range(30, 101)))
    opt.update(over)
    return SimpleNamespace(**opt)


def test_cnnspot_matches_cnndetection_train_pipeline_draw_for_draw() -> None:
    transform = TRAIN_TRANSFORMS.get("cnnspot")(image_size=224)  # the defaults are README's Blur+JPEG(0.5)
    events: list[str] = []
    for k in range(14):
        h, w = [(300, 260), (240, 410), (256, 256), (512, 512)][k % 4]
        image = photo(h, w, k)
        got = transform(image, np.random.default_rng(k))
        ref = cnndetection_train(Image.fromarray(image), cnndetection_opt(), np.random.default_rng(k), events)
        assert got.shape == (224, 224, 3) and got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, ref)
    assert {"blur", "cv2", "pil"} <= set(events)  # every branch was exercised


@pytest.mark.parametrize("options, over", [
    # one sigma / one quality / one method: the original draws nothing for them (sample_* with len 1)
    ({"blur_prob": 1.0, "blur_sig": 1.5, "jpg_prob": 1.0, "jpg_method": "pil", "jpg_qual": 75},
     {"blur_prob": 1.0, "blur_sig": [1.5], "jpg_prob": 1.0, "jpg_method": ["pil"], "jpg_qual": [75]}),
    # CNNDetection's comma strings, and several resize filters drawn per image
    ({"jpg_prob": 1.0, "blur_prob": 0.0, "jpg_method": "cv2,pil", "jpg_qual": "30,40", "rz_interp": "bilinear,bicubic"},
     {"jpg_prob": 1.0, "blur_prob": 0.0, "jpg_qual": list(range(30, 41)), "rz_interp": ["bilinear", "bicubic"]}),
])
def test_cnnspot_options_follow_the_originals_parsing(options: dict, over: dict) -> None:
    transform = build_train_transform("cnnspot", 224, options)
    for k in range(4):
        image = photo(280, 300, 20 + k)
        ref = cnndetection_train(Image.fromarray(image), cnndetection_opt(**over), np.random.default_rng(k), [])
        np.testing.assert_array_equal(transform(image, np.random.default_rng(k)), ref)


def test_cnnspot_jpeg_happens_before_the_crop() -> None:
    # JPEG at q 30 on the 256 resize, then a crop at an offset that is not a multiple of 8: the 8x8
    # block grid is not aligned with the crop, unlike a JPEG of the crop itself.
    transform = build_train_transform("cnnspot", 224, {"blur_prob": 0.0, "jpg_prob": 1.0, "jpg_method": "pil",
                                                       "jpg_qual": 30, "hflip": 0.0})
    image = photo(256, 300, 3)
    got = transform(image, np.random.default_rng(5))
    r = np.random.default_rng(5)
    r.random(), r.random()  # blur coin, JPEG coin (one method, one quality: no draws)
    top, left = int(r.integers(0, 256 - 224 + 1)), int(r.integers(0, 300 - 224 + 1))
    assert (top % 8, left % 8) != (0, 0)
    crop_first = np.array(Image.open(_pil_q(image[top:top + 224, left:left + 224], 30)))
    assert not np.array_equal(got, crop_first)
    jpeg_first = np.array(Image.open(_pil_q(image, 30)))[top:top + 224, left:left + 224]
    np.testing.assert_array_equal(got, jpeg_first)


def _pil_q(image: np.ndarray, q: int) -> BytesIO:
    out = BytesIO()
    Image.fromarray(image).save(out, format="jpeg", quality=q)
    return out


# ------------------------------------------------------------------------------- AutoGAN and GramNet


def test_autogan_matches_its_cv2_squash_and_random_crop(tmp_path: Path) -> None:
    transform = build_train_transform("autogan", 224)
    centre = build_train_transform("autogan", 224, {"random_crop": False})
    for k, (h, w) in enumerate([(300, 420), (256, 256), (128, 128)]):
        rgb = photo(h, w, k)
        path = str(tmp_path / f"{k}.png")
        cv2.imwrite(path, rgb[:, :, ::-1])
        image = cv2.imread(path)  # cycleGAN_dataset.py:119-121: BGR, squashed to 256 unless already 256
        if image.shape[0] != 256:
            image = cv2.resize(image, (256, 256))
        rng = np.random.default_rng(k)
        random_x = int(rng.integers(0, 33))  # GAN_Detection_Train.py:186-189: random.randint(0, 32), x then y
        random_y = int(rng.integers(0, 33))
        ref = image[random_y:(random_y + 224), random_x:(random_x + 224), :]
        np.testing.assert_array_equal(transform(rgb, np.random.default_rng(k)), ref[:, :, ::-1])
        # GAN_Detection_Train.py:194 (without --data_augment, and at test time): [16:240, 16:240]
        np.testing.assert_array_equal(centre(rgb, None), image[16:240, 16:240, :][:, :, ::-1])


def test_gramnet_matches_its_resolution_augmentation(tmp_path: Path) -> None:
    transform = build_train_transform("gramnet", 512)
    sizes = []
    for k, (h, w) in enumerate([(375, 500), (512, 512), (128, 128)]):
        rgb = photo(h, w, k)
        path = str(tmp_path / f"{k}.png")
        cv2.imwrite(path, rgb[:, :, ::-1])
        rng = np.random.default_rng(k)
        size = int(rng.integers(64, 257))  # main.py:38 random.randint(64, 256)
        im = cv2.imread(path)  # main.py:40-42
        im = cv2.resize(im, (size, size))
        im = cv2.resize(im, (512, 512))
        sizes.append(size)
        got = transform(rgb, np.random.default_rng(k))
        assert got.shape == (512, 512, 3)
        np.testing.assert_array_equal(got, im[:, :, ::-1])
    assert len(set(sizes)) == 3


def test_f3net_is_a_pil_default_resize_and_a_flip() -> None:
    transform = build_train_transform("f3net", 299)
    flips = 0
    for k in range(6):
        image = photo(240, 320, k)
        rng = np.random.default_rng(k)
        img = Image.fromarray(image).resize((299, 299))  # utils.py:46-48: Pillow's default filter
        if float(rng.random()) < 0.5:  # utils.py:22 RandomHorizontalFlip(p=0.5)
            img, flips = TF.hflip(img), flips + 1
        np.testing.assert_array_equal(transform(image, np.random.default_rng(k)), np.array(img))
    assert 0 < flips < 6
    bilinear = np.array(Image.fromarray(photo(240, 320, 0)).resize((299, 299), Image.BILINEAR))
    assert not np.array_equal(build_train_transform("f3net", 299, {"hflip": 0.0})(photo(240, 320, 0),
                                                                                 np.random.default_rng(0)), bilinear)


# ---------------------------------------------------------------------------------- registry, errors


def test_registry_names_options_and_errors() -> None:
    assert {"cnnspot", "autogan", "f3net", "gramnet"} <= set(TRAIN_TRANSFORMS.names())
    # the config accepts the registry's names; an unknown one is one line with the close matches
    for name in ("cnnspot", "autogan", "f3net", "gramnet"):
        assert config_from_dict({"data": {"train_transform": name}}).data.train_transform == name
    with pytest.raises(GenImageError, match="did you mean: cnnspot"):
        config_from_dict({"data": {"train_transform": "cnnspto"}})
    with pytest.raises(GenImageError, match="cnnspot"):
        TRAIN_TRANSFORMS.get("cnnspto")
    with pytest.raises(GenImageError, match="unknown option 'blur_p'.*blur_prob"):
        build_train_transform("cnnspot", 224, {"blur_p": 0.5})
    bad = [{"jpg_qual": [30, 101]}, {"jpg_qual": [50, 40]}, {"jpg_method": "cv2,libjpeg"}, {"blur_prob": 1.5},
           {"blur_sig": [0, 1, 2]}, {"load_size": 200}]
    for options in bad:
        with pytest.raises(GenImageError):
            build_train_transform("cnnspot", 224, options)
    with pytest.raises(GenImageError, match="min_size"):
        build_train_transform("gramnet", 512, {"min_size": 300})


@pytest.mark.parametrize("name, size", [("cnnspot", 224), ("autogan", 224), ("f3net", 299), ("gramnet", 96)])
def test_transforms_are_picklable_and_pure_functions_of_the_sample_rng(name: str, size: int) -> None:
    transform = pickle.loads(pickle.dumps(build_train_transform(name, size)))
    image = photo(300, 280, 1)
    a = transform(image, sample_rng(0, 1, 7))
    assert a.shape == (size, size, 3) and a.dtype == np.uint8 and a.flags.c_contiguous and a.flags.writeable
    frozen = image.copy()
    frozen.flags.writeable = False  # a decoder may hand out read-only buffers
    assert transform(frozen, sample_rng(0, 1, 7)).flags.writeable
    np.testing.assert_array_equal(a, transform(image, sample_rng(0, 1, 7)))
    outs = [transform(image, sample_rng(0, e, 7)) for e in range(2, 6)]
    assert any(not np.array_equal(a, o) for o in outs)
