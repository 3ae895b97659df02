"""Each detector's eval transform against its original code's calls, written here as the original writes
them (PIL / cv2 / torchvision), never our code. Quotes are GenImage-Dataset/GenImage:detector_codes/...
unless another repository is named."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision import transforms

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.eval_transforms import centre_crop
from genimage_fast.loaders.pipelines import EVAL_TRANSFORMS

# (width, height): landscape / portrait photos, odd sizes, a small image (CNNDetection pads it),
# GenImage's fake sizes
SIZES = [(500, 375), (300, 451), (201, 333), (150, 100), (512, 512), (1024, 1024)]


def _photo(w: int, h: int, seed: int) -> np.ndarray:
    """Photo-like: smooth colour fields, edges and mild noise, through a JPEG round trip as reals are."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC)).astype(np.int16)
    base[h // 3: h // 2, :, 0] = 250  # a hard edge
    noisy = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=90)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [_photo(w, h, i) for i, (w, h) in enumerate(SIZES)]


def _ours(name: str, image: np.ndarray, size: int, **options) -> np.ndarray:
    out = EVAL_TRANSFORMS.get(name)(image_size=size, **options)(image, None)
    assert out.dtype == np.uint8 and out.shape == (size, size, 3) and out.flags.c_contiguous
    return out


def test_registry_has_every_contract_name():
    assert set(EVAL_TRANSFORMS.names()) >= {"resize_centre", "timm_resnet50", "timm_vit", "cnndetection",
                                            "autogan", "f3net", "gramnet"}
    with pytest.raises(GenImageError, match="did you mean: timm_vit"):
        EVAL_TRANSFORMS.get("timm_vt")


def test_timm_resnet50_is_timm_0612_eval_with_the_resnet50_cfg(photos):
    # pytorch-image-models-0.6.12/timm/models/resnet.py:66-68: 'resnet50': interpolation='bicubic', crop_pct=0.95
    # timm/data/transforms_factory.py:147: scale_size = int(math.floor(img_size / crop_pct))
    # transforms_factory.py:149-151: Resize(scale_size, interpolation=str_to_interp_mode(interpolation)), CenterCrop
    # timm's ImageDataset reads with Image.open(f).convert('RGB') (timm/data/dataset.py)
    bicubic = transforms.InterpolationMode.BICUBIC
    ref = transforms.Compose([transforms.Resize(int(math.floor(224 / 0.95)), interpolation=bicubic),
                              transforms.CenterCrop(224)])
    for image in photos:
        assert np.array_equal(_ours("timm_resnet50", image, 224), np.asarray(ref(Image.fromarray(image))))


def test_timm_vit_is_deit_and_swin_eval(photos):
    # deit-main/datasets.py:101-105: size = int(args.input_size / args.eval_crop_ratio) (main.py:174: 0.875),
    #   transforms.Resize(size, interpolation=3), transforms.CenterCrop(args.input_size)
    deit = transforms.Compose([transforms.Resize(int(224 / 0.875), interpolation=3), transforms.CenterCrop(224)])
    # Swin-Transformer-main/data/build.py:148-153: size = int((256 / 224) * config.DATA.IMG_SIZE),
    #   Resize(size, interpolation=_pil_interp('bicubic') (config.py:30)), CenterCrop(IMG_SIZE)
    swin = transforms.Compose([transforms.Resize(int((256 / 224) * 224), interpolation=Image.BICUBIC),
                               transforms.CenterCrop(224)])
    for image in photos:
        ours = _ours("timm_vit", image, 224)
        assert np.array_equal(ours, np.asarray(deit(Image.fromarray(image))))
        assert np.array_equal(ours, np.asarray(swin(Image.fromarray(image))))


def test_cnndetection_centre_crops_without_resizing_and_pads_small_images(photos):
    # CNNDetection-master/eval.py:21: opt.no_resize = True; data/datasets.py:35-36 then skips custom_resize;
    # datasets.py:29: crop_func = transforms.CenterCrop(opt.cropSize), options/base_options.py:30: cropSize 224
    # (data_augment with blur_prob = jpg_prob = 0, base_options.py:19-21, only round-trips np.array / fromarray)
    for image in photos:
        ref = np.asarray(transforms.CenterCrop(224)(Image.fromarray(np.array(Image.fromarray(image)))))
        assert np.array_equal(_ours("cnndetection", image, 224), ref)
    small = photos[3]  # 150 x 100: zero padding on every side, the odd pixel right / bottom
    out = _ours("cnndetection", small, 224)
    assert out[:62].max() == 0 and out[:, :37].max() == 0 and out[-62:].max() == 0 and out[:, -37:].max() == 0
    assert np.array_equal(centre_crop(small, 97), np.asarray(transforms.CenterCrop(97)(Image.fromarray(small))))


def test_autogan_is_a_cv2_squash_to_256_and_the_16_240_crop(photos):
    for image in photos:
        # AutoGAN-master/code/cycleGAN_dataset.py:119-121: image = cv2.imread(filename);
        #   if image.shape[0] != 256: image = cv2.resize(image, (256, 256))
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # what cv2.imread gives
        if bgr.shape[0] != 256:
            bgr = cv2.resize(bgr, (256, 256))
        # GAN_Detection_Train.py:200 (test branch): im = deepcopy(img.numpy()[16:240, 16:240, :])
        ref = bgr[16:240, 16:240, :]
        assert np.array_equal(_ours("autogan", image, 224), ref[:, :, ::-1])  # ours is RGB


def test_f3net_is_a_pil_squash_to_299(photos):
    # yyk-wew/F3Net utils.py:39-40 (FFDataset.resize_image): img = image.resize((size, size)); size=299 (utils.py:14)
    for image in photos:
        ref = np.asarray(Image.fromarray(image).resize((299, 299)))
        assert np.array_equal(_ours("f3net", image, 299), ref)


def test_gramnet_is_a_cv2_squash(photos):
    # Global_Texture_Enhancement_for_Fake_Face_Detection_in_the-Wild-master/stylegan-ffhq/test3.py:54-56:
    #   im = cv2.imread(path); im = cv2.resize(im, (512, 512))
    for image in photos:
        ref = cv2.resize(np.ascontiguousarray(image[:, :, ::-1]), (512, 512))
        assert np.array_equal(_ours("gramnet", image, 512), ref[:, :, ::-1])


def test_resize_centre_is_torchvision_resize_and_centre_crop_within_one_level(photos):
    """Our default: Resize(256, bilinear, antialias) + CenterCrop(224). The box resize equals it up to
    rounding (PIL resamples the crop box directly; enlargements go through OpenCV's bilinear warp,
    within 1 level of PIL's), hence 1 level max rather than exact."""
    for image in photos:
        chw = torch.from_numpy(image.copy()).permute(2, 0, 1)
        ref = TF.center_crop(TF.resize(chw, 256, antialias=True), [224, 224])
        diff = np.abs(_ours("resize_centre", image, 224).astype(int) - ref.permute(1, 2, 0).numpy().astype(int))
        assert diff.max() <= 1 and diff.mean() <= 0.5


def test_options_and_bad_input():
    image = _photo(64, 48, 0)
    assert EVAL_TRANSFORMS.get("timm_resnet50")(image_size=32, crop_pct=0.5)(image, None).shape == (32, 32, 3)
    with pytest.raises(GenImageError, match="interpolation"):
        EVAL_TRANSFORMS.get("timm_vit")(image_size=32, interpolation="cubic")(image, None)
    with pytest.raises(GenImageError, match="HWC uint8"):
        EVAL_TRANSFORMS.get("f3net")(image_size=32)(image.astype(np.float32), None)
