"""Crop plans, DCT-scaled decode and the epoch planner, against torchvision / PIL references."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.transforms import RandomResizedCrop

from genimage_fast.loaders.decode import dct_scale, decode_crop, opencv, resize_array, resize_box
from genimage_fast.loaders.plan import EpochPlanner
from genimage_fast.loaders.transforms import TransformSpec, make_crop_plan
from tests.conftest import requires_turbojpeg


def _smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like image: low-frequency colour fields plus mild noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return np.clip(big + rng.integers(-6, 7, size=big.shape), 0, 255).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_rrc_boxes_follow_torchvision_limits():
    w = np.full(2000, 500)
    h = np.full(2000, 375)
    plan = make_crop_plan(TransformSpec("rrc", 224), w, h, seed=3, epoch=0)
    cw = (plan.boxes[:, 2] - plan.boxes[:, 0]) * w
    ch = (plan.boxes[:, 3] - plan.boxes[:, 1]) * h
    area = cw * ch / (w * h)
    assert plan.boxes.min() >= 0 and plan.boxes.max() <= 1
    assert area.min() >= 0.08 - 1e-3 and area.max() <= 1 + 1e-9
    assert (cw / ch).min() >= 0.75 - 0.02 and (cw / ch).max() <= 4 / 3 + 0.02
    # integer pixel boxes, as torchvision's get_params returns
    assert np.allclose(cw, np.round(cw)) and np.allclose(plan.boxes[:, 0] * w, np.round(plan.boxes[:, 0] * w))
    assert 0.3 < plan.flips.mean() < 0.7


def test_hflip_probability_is_honoured():
    w, h = np.full(2000, 500), np.full(2000, 375)
    never = make_crop_plan(TransformSpec("rrc", 224, hflip=0.0), w, h, seed=3, epoch=0)
    always = make_crop_plan(TransformSpec("rrc", 224, hflip=1.0), w, h, seed=3, epoch=0)
    assert not never.flips.any() and always.flips.all()
    assert np.array_equal(never.boxes, always.boxes)  # the crop stream does not depend on hflip


@pytest.mark.parametrize("size", [(10, 1000), (1000, 10)])
def test_rrc_fallback_matches_torchvision(size):
    w, h = size  # no try can fit: both implementations take the same deterministic centre crop
    top, left, ch, cw = RandomResizedCrop.get_params(torch.zeros(3, h, w), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    box = make_crop_plan(TransformSpec("rrc", 8), np.array([w]), np.array([h]), 0, 0).boxes[0]
    assert np.allclose(box * [w, h, w, h], [left, top, left + cw, top + ch])


def test_plan_is_deterministic_per_seed_and_epoch():
    w, h = np.arange(100, 200), np.arange(150, 250)
    a = make_crop_plan(TransformSpec("rrc", 64), w, h, seed=1, epoch=2)
    b = make_crop_plan(TransformSpec("rrc", 64), w, h, seed=1, epoch=2)
    c = make_crop_plan(TransformSpec("rrc", 64), w, h, seed=1, epoch=3)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.flips, b.flips)
    assert not np.array_equal(a.boxes, c.boxes)


def test_eval_crop_equals_torchvision_resize_then_center_crop():
    image = _smooth_image(375, 500)
    ref = TF.center_crop(TF.resize(torch.from_numpy(image).permute(2, 0, 1), 256, antialias=True), [224, 224])
    box = make_crop_plan(TransformSpec("eval", 224), np.array([500]), np.array([375]), 0, 0).boxes[0]
    ours = torch.from_numpy(decode_crop("raw", image, box, 224, False).copy()).permute(2, 0, 1)
    assert (ours.int() - ref.int()).abs().float().mean() <= 1.0


def test_resize_crop_box_is_an_image_size_crop_of_the_resized_image():
    spec = TransformSpec("resize_crop", 224, resize_size=256)
    plan = make_crop_plan(spec, np.array([500, 300]), np.array([375, 600]), 0, 0)
    for box, (w, h) in zip(plan.boxes, [(500, 375), (300, 600)], strict=True):
        rh, rw = TF.resize(torch.zeros(1, h, w), 256, antialias=True).shape[1:]  # torchvision's sizes
        crop = box * [rw, rh, rw, rh]
        assert np.allclose(crop[2:] - crop[:2], 224) and np.allclose(crop, np.round(crop))


def _jpeg_and_pil_resize() -> tuple[bytes, np.ndarray, np.ndarray]:
    data = _encode(_smooth_image(1024, 1024, seed=1), "JPEG", quality=95)
    box = np.array([0.0, 0.0, 1.0, 1.0])
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.BILINEAR))
    return data, box, full


@requires_turbojpeg  # the reduced decode is PyTurboJPEG's
def test_jpeg_dct_scaled_decode_is_close_to_full_decode():
    data, box, full = _jpeg_and_pil_resize()
    assert dct_scale(1024, 1024, box, 224) == 2 and dct_scale(1024, 1024, box, 64) == 8
    ours = decode_crop("jpeg", data, box, 224, False, fast_jpeg=True)  # the opt-in fast_jpeg_decode
    assert np.abs(ours.astype(int) - full.astype(int)).mean() <= 1.0


def test_jpeg_default_decode_is_full_size():
    data, box, full = _jpeg_and_pil_resize()
    assert np.array_equal(decode_crop("jpeg", data, box, 224, False), full)  # the default: full size


def test_decode_handles_cmyk_and_png_named_jpeg_and_flip():
    image = _smooth_image(64, 48)
    cmyk = io.BytesIO()
    Image.fromarray(image).convert("CMYK").save(cmyk, format="JPEG", quality=95)
    box = np.array([0.1, 0.2, 0.9, 0.8])
    ref = np.asarray(Image.open(io.BytesIO(cmyk.getvalue())).convert("RGB").resize((32, 32), Image.BILINEAR,
                                                                                   box=(4.8, 12.8, 43.2, 51.2)))
    assert np.abs(decode_crop("jpeg", cmyk.getvalue(), box, 32, False).astype(int) - ref).mean() < 0.5
    png = _encode(image, "PNG")  # a ".JPEG" that is really a PNG: sniffed, not trusted
    plain = decode_crop("png", png, box, 32, False)
    assert np.array_equal(decode_crop("jpeg", png, box, 32, False), plain)
    assert np.array_equal(decode_crop("png", png, box, 32, True), plain[:, ::-1])


def test_small_images_are_upsampled_not_rejected():
    image = _smooth_image(40, 30)
    for kind in ("rrc", "resize_crop", "eval"):
        box = make_crop_plan(TransformSpec(kind, 224), np.array([30]), np.array([40]), 0, 0).boxes[0]
        assert decode_crop("raw", image, box, 224, False).shape == (224, 224, 3)


def _planner(n: int, world_size: int, rank: int, drop_last: bool, shuffle: bool = True, batch_size: int = 4,
             selected: np.ndarray | None = None) -> EpochPlanner:
    return EpochPlanner(selected=np.arange(n) if selected is None else selected, width=np.full(n, 100),
                        height=np.full(n, 80), spec=TransformSpec("rrc", 32), batch_size=batch_size, seed=5,
                        rank=rank, world_size=world_size, drop_last=drop_last, shuffle=shuffle)


@pytest.mark.parametrize("drop_last", [True, False])
def test_ddp_shares_are_disjoint_equal_and_cover_the_epoch(drop_last):
    n, world = 23, 3
    shares = []
    for rank in range(world):
        planner = _planner(n, world, rank, drop_last, batch_size=2)
        batches = planner.batches(epoch=1)
        assert len(batches) == len(planner)
        shares.append(np.concatenate([b.indices for b in batches]))
    assert len({len(s) for s in shares}) == 1  # every rank the same number of samples and batches
    everything = np.concatenate(shares)
    if drop_last:
        assert len(set(everything.tolist())) == len(everything)  # disjoint
        assert len(everything) == n // world // 2 * 2 * world
    else:
        assert set(everything.tolist()) == set(range(n))  # covers the epoch; padding repeats only
        assert len(everything) - len(set(everything.tolist())) == (-n) % world


def test_epoch_order_and_resume():
    planner = _planner(30, 1, 0, drop_last=True)
    e0, e1 = planner.batches(0), planner.batches(1)
    seen = np.concatenate([b.indices for b in e0])
    assert len(seen) == 28 and len(set(seen.tolist())) == 28  # 30 samples, 7 full batches of 4
    assert not np.array_equal(e0[0].indices, e1[0].indices)
    resumed = planner.batches(1, start_batch=3)
    assert len(resumed) == len(e1) - 3
    for a, b in zip(resumed, e1[3:], strict=True):
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.boxes, b.boxes)
    ordered = _planner(10, 1, 0, drop_last=False, shuffle=False, batch_size=4).batches(0)
    assert [b.indices.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_crops_do_not_depend_on_the_selection():
    full = _planner(20, 1, 0, drop_last=False, shuffle=False).batches(0)
    some = _planner(20, 1, 0, drop_last=False, shuffle=False, selected=np.array([3, 7, 11])).batches(0)
    boxes = {int(i): box for b in full for i, box in zip(b.indices, b.boxes, strict=True)}
    for i, box in zip(some[0].indices, some[0].boxes, strict=True):
        assert np.array_equal(boxes[int(i)], box)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_png_decode_equals_pil_in_every_mode(mode):
    image = Image.fromarray(_smooth_image(50, 70, seed=2)).convert(mode)
    data = _save(image)  # RGB goes through OpenCV when installed, the other modes through PIL
    box = np.array([0.1, 0.1, 0.9, 0.8])
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((32, 32), Image.BILINEAR,
                                                                          box=(7.0, 5.0, 63.0, 40.0)))
    assert np.array_equal(decode_crop("png", data, box, 32, False), ref)


def _save(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("box", [(0.05, 0.1, 0.6, 0.7), (0.0, 0.0, 1.0, 1.0), (0.31, 0.02, 0.93, 0.41)])
def test_resize_array_matches_pil_resize(box, flip):
    """The OpenCV enlargement path lands within 1 level of PIL's bilinear; shrinking is PIL itself."""
    if opencv() is None:
        pytest.skip("OpenCV not installed: resize_array is PIL only")
    rng = np.random.default_rng(1)
    smooth = Image.fromarray((rng.random((48, 40, 3)) * 255).astype(np.uint8)).resize((200, 160), Image.BICUBIC)
    pixels = np.asarray(smooth)
    box = np.array(box)
    for size in (96, 256):  # 96: the crop shrinks (PIL path); 256: it is enlarged (OpenCV path)
        ours = resize_array(pixels, box, size, flip).astype(int)
        ref = resize_box(smooth, box, size, flip).astype(int)
        assert ours.shape == ref.shape == (size, size, 3)
        assert np.abs(ours - ref).max() <= 1 and np.abs(ours - ref).mean() < 0.3
        bgr = resize_array(np.ascontiguousarray(pixels[:, :, ::-1]), box, size, flip, bgr=True)
        assert np.array_equal(bgr, ours)
