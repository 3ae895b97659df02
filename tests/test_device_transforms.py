"""The device twins of the eval transforms (loaders/device_transforms.py) against Pillow / OpenCV themselves.

Issue #12 (work in progress: the CUDA source-degradation path will run these on the device). Pillow's
resample is rebuilt in fixed point, so one-pass resizes are exact; two-pass ones follow vertical_first.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genimage_fast.loaders import eval_transforms as et
from genimage_fast.loaders.device_transforms import DEVICE_EVAL_TRANSFORMS, centre_crop, cv2_linear, pil_resize
from genimage_fast.loaders.npr_transforms import NPREval

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    noisy = np.asarray(coarse).astype(int) + rng.integers(-20, 21, (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def hwc(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name", list(FILTERS))
def test_one_pass_resizes_are_pillows_bit_for_bit(name: str) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # noise: any coefficient error shows
    for size in [(224, 37), (20, 37), (53, 100), (53, 9)]:
        ref = np.asarray(Image.fromarray(img).resize(size, FILTERS[name]))
        assert np.array_equal(hwc(pil_resize(nchw(img), size, name)), ref), size
    box = (6.4, 0.0, 49.52, 37.0)  # fractional box: Pillow's float32 box arithmetic
    ref = np.asarray(Image.fromarray(img).resize((64, 37), FILTERS[name], box=box))
    assert np.array_equal(hwc(pil_resize(nchw(img), (64, 37), name, box)), ref)


def test_cv2_linear_within_one_level_of_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    img = photo(97, 64, 1)
    for size in [(256, 256), (40, 30), (101, 77)]:
        d = np.abs(cv2.resize(img, size).astype(int) - hwc(cv2_linear(nchw(img), size)))
        assert d.max() <= 1 and d.mean() <= 0.2, size  # OpenCV's 11-bit fixed-point weights


def test_centre_crop_pads_as_torchvision() -> None:
    img = photo(20, 31, 2)
    for size in (8, 25, 40):
        assert np.array_equal(hwc(centre_crop(nchw(img), size)), et.centre_crop(img, size)), size


HOSTS = {"resize_centre": et.ResizeCentre(224), "timm_resnet50": et.timm_resnet50(224), "timm_vit": et.timm_vit(224),
         "cnndetection": et.CnnDetectionEval(224), "f3net": et.F3NetEval(299), "npr": NPREval(224)}


@pytest.mark.parametrize("hw", [(375, 500), (512, 512), (333, 250), (200, 180)])
def test_device_eval_transforms_match_the_host_ones(hw: tuple[int, int]) -> None:
    pytest.importorskip("cv2")  # the host resize_centre enlarges with OpenCV
    img = photo(*hw, seed=hw[0])
    for name, host in HOSTS.items():
        d = np.abs(host(img, None).astype(int) - hwc(DEVICE_EVAL_TRANSFORMS.get(name)(host)(nchw(img))))
        assert d.mean() <= 0.3 and d.max() <= 3, (name, hw, d.max(), d.mean())
        if hw[0] == hw[1] or name.startswith("timm") or name == "cnndetection":
            assert d.max() == 0, (name, hw)  # square sources and aspect-preserving resizes: exact


@pytest.mark.parametrize("hw", [(100, 150), (223, 1000), (64, 64), (300, 250)])
def test_npr_genimage_twin_is_the_readme_tiling_then_centre_crop(hw: tuple[int, int]) -> None:
    """NPR's GenImage eval (README.md:196-216 at chuangchuangtan/NPR-DeepfakeDetection e2dbbe6): the
    README's translate_duplicate (PIL pastes, copied verbatim in tests/test_npr_transforms.py), then
    torchvision's CenterCrop(224) - exact on the device."""
    from PIL import Image
    from torchvision import transforms

    from genimage_fast.loaders.npr_transforms import NPRGenImageEval
    from tests.test_npr_transforms import translate_duplicate

    img = photo(*hw, seed=hw[1])
    ref = np.asarray(transforms.CenterCrop(224)(translate_duplicate(Image.fromarray(img), 224)))
    got = hwc(DEVICE_EVAL_TRANSFORMS.get("npr_genimage")(NPRGenImageEval(224))(nchw(img)))
    assert np.array_equal(got, ref), hw
