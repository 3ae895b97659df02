"""Training augmentation: timm op semantics (against timm's PIL ops), JSD views, random erasing,
CNNSpot blur + JPEG (against scipy and PIL, the original's libraries), determinism."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.ndimage
import timm.data.auto_augment as timm_aa
import torch
from PIL import Image

from genimage_fast.config import AugConfig, LossConfig
from genimage_fast.engine.augment import (
    AUGMIX_OPS,
    OPS,
    RAND_INCREASING_OPS,
    RAND_OPS,
    RandAugment,
    build_train_augment,
)
from genimage_fast.errors import GenImageError

GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def smooth_image(seed: int, h: int = 48, w: int = 40) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    coarse = torch.tensor(rng.integers(0, 256, (1, 3, 8, 8)).astype(np.float32))
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    return img.round().clamp(0, 255).to(torch.uint8)


def batch(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.stack([smooth_image(seed + i, size, size) for i in range(n)])


@pytest.mark.parametrize("name", sorted(set(RAND_OPS + RAND_INCREASING_OPS + AUGMIX_OPS)))
def test_ops_match_timms_pil_ops(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timm_aa.random, "random", lambda: 0.0)  # timm: no sign flip either
    img = smooth_image(1)
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    for magnitude in (3.0, 9.0):
        op = timm_aa.AugmentOp(name, prob=1.0, magnitude=magnitude,
                               hparams={"img_mean": (124, 116, 104), "interpolation": Image.BILINEAR})
        ref = np.asarray(op(pil)).astype(int)
        got = OPS.get(name)(img[None], np.array([magnitude]), np.array([1.0]))[0].permute(1, 2, 0).numpy().astype(int)
        diff = np.abs(ref - got)
        if name in GEOMETRIC:  # resampling conventions differ at the borders only
            assert np.mean(diff <= 2) > 0.93, (name, magnitude, np.mean(diff <= 2))
        else:
            assert diff.max() <= 1, (name, magnitude, diff.max())


def test_grouped_ops_give_each_image_its_own_op_and_magnitude() -> None:
    from genimage_fast.engine.augment import apply_grouped

    images = batch(4)
    names = ("Invert", "Brightness")
    got = apply_grouped(images, np.array([0, -1, 1, 1]), names, np.array([0.0, 0.0, 2.0, 8.0]), np.ones(4))
    assert torch.equal(got[0], 255 - images[0]) and torch.equal(got[1], images[1])
    for i in (2, 3):
        single = OPS.get("Brightness")(images[i:i + 1], np.array([float(2 + 6 * (i - 2))]), np.ones(1))
        assert torch.equal(got[i], single[0])
    assert not torch.equal(got[2], got[3])


def test_randaugment_policy_strings() -> None:
    ra = RandAugment.from_policy("rand-m9-mstd0.5-inc1")
    assert (ra.magnitude, ra.mstd, ra.increasing, ra.num_layers, ra.mmax) == (9.0, 0.5, True, 2, 10.0)
    assert RandAugment.from_policy("rand-m7-n3").num_layers == 3
    assert RandAugment.from_policy("rand-m7-n3").ops == tuple(timm_aa._RAND_TRANSFORMS)
    assert ra.ops == tuple(timm_aa._RAND_INCREASING_TRANSFORMS)
    for bad in ("augmix-m3", "rand-x9", "rand-m9-foo1"):
        with pytest.raises(GenImageError):
            RandAugment.from_policy(bad)


def test_no_augmentation_is_just_scaling() -> None:
    images, labels = batch(), torch.tensor([0, 1, 1, 0])
    x, y = build_train_augment(AugConfig(), LossConfig())(images, labels, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, images.float() / 255)
    assert torch.equal(y, labels)


def test_jsd_views_are_split_major_with_a_clean_first_split() -> None:
    images, labels = batch(4), torch.tensor([0, 1, 1, 0])
    aug = build_train_augment(AugConfig(randaugment="rand-m9-mstd0.5-inc1", random_erase=1.0),
                              LossConfig(name="jsd_ce", jsd_splits=3))
    x, y = aug(images, labels, torch.Generator().manual_seed(0))
    assert x.shape == (12, 3, 32, 32) and torch.equal(y, labels.repeat(3))
    torch.testing.assert_close(x[:4], images.float() / 255)  # clean split: neither augmented nor erased
    assert not torch.equal(x[4:8], x[8:12])
    assert all(not torch.equal(x[i], x[0]) for i in (4, 8))  # erased with probability 1


def test_augmix_views_stay_close_to_the_image() -> None:
    images = batch(4)
    aug = build_train_augment(AugConfig(augmix=True), LossConfig(name="jsd_ce", jsd_splits=2))
    x, _ = aug(images, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(1))
    delta = (x[4:] - x[:4]).abs().mean().item()
    assert 0.0 < delta < 0.25  # a blend of the image with its augmentation chains


def test_config_errors_are_user_errors() -> None:
    with pytest.raises(GenImageError, match="jsd_ce"):
        build_train_augment(AugConfig(), LossConfig(name="jsd_ce"))
    with pytest.raises(GenImageError, match="augmix"):
        build_train_augment(AugConfig(augmix=True), LossConfig(name="ce"))
    with pytest.raises(GenImageError, match="jpeg_quality"):
        build_train_augment(AugConfig(jpeg_prob=0.5, jpeg_quality=[50]), LossConfig())


def erased_boxes(x: torch.Tensor, clean: torch.Tensor) -> list[tuple[int, int] | None]:
    """(height, width) of the changed region per image, checking it is one solid rectangle."""
    boxes = []
    for a, b in zip(x, clean, strict=True):
        changed = (a != b).any(dim=0)
        if not changed.any():
            boxes.append(None)
            continue
        rows, cols = changed.any(1).nonzero()[:, 0], changed.any(0).nonzero()[:, 0]
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert changed.sum() >= 0.9 * h * w  # a filled rectangle (a few noise pixels may equal the image)
        boxes.append((h, w))
    return boxes


def test_random_erasing_follows_timm_semantics() -> None:
    images = batch(64, 40)
    clean = images.float() / 255
    aug = build_train_augment(AugConfig(random_erase=0.5), LossConfig())
    x, _ = aug(images, torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(3))
    boxes = erased_boxes(x, clean)
    erased = [b for b in boxes if b is not None]
    assert 16 <= len(erased) <= 48  # Binomial(64, 0.5): far outside this is a bug
    for h, w in erased:  # area 2%-33% of 40x40 and aspect ratio within [0.3, 1/0.3] (rounded sides)
        assert 0.015 * 1600 <= h * w <= 0.36 * 1600 and 0.25 <= h / w <= 4.0
    assert x.min() >= 0 and x.max() <= 1
    fill = torch.cat([(x[i] - clean[i]).flatten() for i, b in enumerate(boxes) if b])
    assert fill.abs().max() > 0.2  # per-pixel random values, not a constant
    none = build_train_augment(AugConfig(random_erase=0.0), LossConfig())
    assert torch.equal(none(images, torch.zeros(64), torch.Generator())[0], clean)


def test_same_generator_state_same_batch() -> None:
    cfg = AugConfig(randaugment="rand-m9-mstd0.5-inc1", random_erase=0.5)
    aug = build_train_augment(cfg, LossConfig(name="jsd_ce"))
    images, labels = batch(4), torch.zeros(4, dtype=torch.long)
    a, _ = aug(images, labels, torch.Generator().manual_seed(7))
    b, _ = aug(images, labels, torch.Generator().manual_seed(7))
    c, _ = aug(images, labels, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- CNNSpot blur + JPEG (CNNDetection data/datasets.py: scipy gaussian_filter on uint8, cv2/PIL JPEG) ---


def scipy_uint8_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """The original gaussian_blur: per channel, output written into the uint8 array."""
    out = img.copy()
    for c in range(3):
        scipy.ndimage.gaussian_filter(img[:, :, c], output=out[:, :, c], sigma=sigma)
    return out


def pil_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="jpeg", quality=quality)
    return np.asarray(Image.open(buf))


def test_cnnspot_blur_is_the_originals_scipy_blur_at_some_sigma_in_range() -> None:
    images = batch(8, 24)
    aug = build_train_augment(AugConfig(blur_prob=1.0, blur_sigma_max=3.0, jpeg_prob=0.0), LossConfig())
    x, _ = aug(images, torch.zeros(8, dtype=torch.long), torch.Generator().manual_seed(0))
    got = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    grid = np.linspace(0.0, 3.0, 301)
    best = []
    for i in range(8):
        src = images[i].permute(1, 2, 0).numpy()
        errors = [np.abs(scipy_uint8_blur(src, s).astype(int) - got[i]).max() for s in grid]
        assert min(errors) <= 1, (i, min(errors))
        best.append(grid[int(np.argmin(errors))])
    assert len(set(np.round(best, 1))) >= 4  # sigma varies per image


def test_cnnspot_jpeg_is_a_pil_round_trip_at_a_quality_in_range() -> None:
    images = batch(6, 32)
    aug = build_train_augment(AugConfig(blur_prob=0.0, jpeg_prob=1.0, jpeg_quality=[30, 100]), LossConfig())
    x, _ = aug(images, torch.zeros(6, dtype=torch.long), torch.Generator().manual_seed(0))
    got = (x * 255).round().permute(0, 2, 3, 1).numpy()
    qualities = []
    for i in range(6):
        src = images[i].permute(1, 2, 0).numpy()
        errors = {q: np.abs(pil_jpeg(src, q) - got[i]).mean() for q in range(30, 101)}
        q = min(errors, key=errors.get)
        assert errors[q] <= 0.7, (i, q, errors[q])  # DESIGN: <= 0.7 levels mean abs difference vs PIL
        qualities.append(q)
    assert len(set(qualities)) >= 3


def test_cnnspot_probabilities_zero_leave_images_alone_and_half_touch_about_half() -> None:
    images = batch(64, 16)
    off = build_train_augment(AugConfig(blur_prob=0.0, jpeg_prob=0.0), LossConfig())
    torch.testing.assert_close(off(images, torch.zeros(64), torch.Generator())[0], images.float() / 255)
    half = build_train_augment(AugConfig(blur_prob=0.5, blur_sigma_max=3.0, jpeg_prob=0.0), LossConfig())
    x, _ = half(images, torch.zeros(64), torch.Generator().manual_seed(5))
    changed = ((x * 255).round().to(torch.uint8) != images).flatten(1).any(1).float().mean().item()
    assert 0.25 <= changed <= 0.75


def test_augmentation_dispatches_no_convolution_or_device_read() -> None:
    """Op groups change size every batch: a conv would make cuDNN autotune (and sync) per new size."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            self.names.add(str(func))
            return func(*args, **(kwargs or {}))

    cfg = AugConfig(randaugment="rand-m9-mstd0.5-inc1", random_erase=0.6)
    aug = build_train_augment(cfg, LossConfig(name="jsd_ce", jsd_splits=3))
    with Ops() as seen:
        for seed in range(3):
            aug(batch(8), torch.zeros(8, dtype=torch.long), torch.Generator().manual_seed(seed))
    assert not {n for n in seen.names if "conv" in n or "_local_scalar_dense" in n}, seen.names
    assert "aten.index_select.default" in seen.names  # the grouped passes ran


def test_augment_wants_a_host_generator() -> None:
    aug = build_train_augment(AugConfig(), LossConfig())
    from types import SimpleNamespace

    on_gpu = SimpleNamespace(device=torch.device("cuda", 0))  # stands in for a CUDA generator
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        aug(batch(2), torch.zeros(2, dtype=torch.long), on_gpu)


def test_augmix_mix_truncates_as_pil_blend() -> None:
    """timm's AugMix ends with Image.blend(img, mixed, m), which truncates (0 and 3 at 0.5 give 1)."""
    import numpy as np
    from PIL import Image

    from genimage_fast.engine.augment import blend_like_pil

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for m in (0.0, 0.25, 0.5, 0.731, 1.0):
        expected = np.asarray(Image.blend(Image.fromarray(a), Image.fromarray(b), m))
        got = blend_like_pil(torch.from_numpy(a), torch.from_numpy(b), torch.tensor(m, dtype=torch.float32))
        assert np.array_equal(got.numpy(), expected), m
