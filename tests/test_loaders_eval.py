"""build_loader's faithful-eval paths (issue #12), each against an independent pipeline written here
with PIL / scipy / torchvision on the demo tree's original files:

- Task 2 on the source image: `degrade=SPEC` acts on the full decoded test image, then the eval
  transform (PIL decode -> the spec with PIL / scipy -> torchvision resize + centre crop);
- one decode chain: with default settings every backend's decoded real is PIL's full-size decode;
- per-detector eval transforms through the loader; TRAIN_TRANSFORMS wiring; one-line errors.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy.ndimage import gaussian_filter
from torchvision import transforms

from genimage_fast.errors import GenImageError
from genimage_fast.loaders import build_loader
from genimage_fast.loaders.decode import resize_box
from genimage_fast.loaders.pipelines import TRAIN_TRANSFORMS, sample_rng
from genimage_fast.loaders.transforms import TransformSpec, make_crop_plan
from genimage_fast.records import open_records
from tests.conftest import requires_backend, requires_turbojpeg

TASK2 = ["lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5"]


def _subset(records) -> np.ndarray:
    """Real photos of several sizes and shapes + a 512² and a 1024² PNG fake from the val split."""
    meta = open_records(records).split("val").meta
    fmt, width, height = (np.asarray(meta[k]) for k in ("source_format", "width", "height"))
    reals = np.flatnonzero(fmt == 0)
    by_shape = {}
    for i in reals:  # one landscape, one portrait, one near-square, one small
        key = (width[i] > height[i], min(width[i], height[i]) < 200)
        by_shape.setdefault(key, i)
    png512 = np.flatnonzero((fmt == 1) & (width == 512))[0]
    png1024 = np.flatnonzero((fmt == 1) & (width == 1024))[0]
    return np.array(sorted([*by_shape.values(), png512, png1024]))


def _pil_decode(demo_tree, records, index: int) -> Image.Image:
    path = open_records(records).split("val").meta["path"][index]
    with Image.open(demo_tree / path) as image:
        return image.convert("RGB")


def _reference_degrade(image: Image.Image, spec: str) -> Image.Image:
    """The paper's Task 2 on the full image, as AIGCDetectBenchmark / CNNDetection call the libraries."""
    name, value = spec.split(":")
    if name == "lr":
        return image.resize((int(value), int(value)), Image.BILINEAR)
    if name == "jpeg":  # PIL's default JPEG save: 4:2:0 chroma
        buf = io.BytesIO()
        image.save(buf, format="jpeg", quality=int(value))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    s = float(value)  # gaussian_filter on the uint8 array: scipy truncates to uint8
    return Image.fromarray(gaussian_filter(np.array(image), sigma=(s, s, 0)))


def _images(loader) -> tuple[np.ndarray, np.ndarray]:
    batches = list(loader)
    images = torch.cat([b.images for b in batches]).permute(0, 2, 3, 1).numpy()
    return images, torch.cat([b.indices for b in batches]).numpy()


@pytest.mark.parametrize("spec", TASK2)
def test_task2_degrades_the_full_source_image(make_records, demo_tree, spec):
    records = make_records("dali")
    subset = _subset(records)
    default, indices = _images(build_loader(records, backend="cpu", batch_size=8, train=False, image_size=224,
                                            num_workers=0, degrade=spec, subset=subset))
    crop, _ = _images(build_loader(records, backend="cpu", batch_size=8, train=False, image_size=224,
                                   num_workers=0, degrade=spec, subset=subset, eval_transform="cnndetection"))
    assert indices.tolist() == subset.tolist()
    for j, index in enumerate(indices):
        degraded = _reference_degrade(_pil_decode(demo_tree, records, int(index)), spec)
        # the default eval transform: torchvision Resize(256, antialias) + CenterCrop(224)
        chw = torch.from_numpy(np.array(degraded)).permute(2, 0, 1)
        ref = TF.center_crop(TF.resize(chw, 256, antialias=True), [224, 224]).permute(1, 2, 0).numpy()
        diff = np.abs(default[j].astype(int) - ref.astype(int))
        assert diff.mean() <= 0.5 and diff.max() <= 2, (spec, int(index), diff.mean(), diff.max())
        # no resize after the degradation (CNNDetection's centre crop): the degraded pixels themselves
        assert np.array_equal(crop[j], np.asarray(transforms.CenterCrop(224)(degraded))), (spec, int(index))


def test_degradation_really_changes_what_the_model_sees(make_records):
    records = make_records("dali")
    kwargs = dict(backend="cpu", batch_size=8, train=False, image_size=64, num_workers=0,
                  subset=_subset(records))
    none, _ = _images(build_loader(records, **kwargs))
    blur, _ = _images(build_loader(records, degrade="blur:3", **kwargs))

    def laplacian(x):
        x = x.astype(float).mean(axis=-1)
        return np.abs(4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]).mean()

    assert laplacian(blur) < 0.7 * laplacian(none)
    assert np.array_equal(none, _images(build_loader(records, degrade="none", **kwargs))[0])


@pytest.mark.parametrize("fmt,backend", [("dali", "cpu"), ("ffcv", "cpu"), ("ffcv", "ffcv"), ("dali", "dali")])
def test_default_decode_of_reals_is_pils_full_size_decode(make_records, demo_tree, fmt, backend):
    """One decode chain: the real JPEG comes out as PIL's full-size decode on every backend."""
    records = make_records(fmt)
    meta = open_records(records).split("val").meta
    reals = np.flatnonzero(np.asarray(meta["source_format"]) == 0)[:12]
    loader = build_loader(records, backend=backend, batch_size=6, train=False, image_size=160, num_workers=1,
                          subset=reals, eval_transform="cnndetection")
    assert loader.decoder == "full"
    crops, indices = _images(loader)
    for j, index in enumerate(indices):
        ref = np.asarray(transforms.CenterCrop(160)(_pil_decode(demo_tree, records, int(index))))
        assert np.array_equal(crops[j], ref), (backend, int(index))
    # the default box path: PIL's full-size decode, then the same resize the fakes get
    boxed, indices = _images(build_loader(records, backend=backend, batch_size=6, train=False, image_size=48,
                                          num_workers=1, subset=reals))
    spec = TransformSpec("eval", 48)
    for j, index in enumerate(indices):
        image = _pil_decode(demo_tree, records, int(index))
        box = make_crop_plan(spec, np.array([image.width]), np.array([image.height]), 0, 0).boxes[0]
        diff = np.abs(boxed[j].astype(int) - resize_box(image, box, 48, False).astype(int))
        if backend == "dali":  # DALI's own antialiased resize: rounding differences only
            assert diff.mean() <= 0.5 and diff.max() <= 3, (int(index), diff.mean())
        else:
            assert diff.max() == 0, (backend, int(index))


@requires_backend("dali", "ffcv")
def test_backends_agree_on_real_photos_within_half_a_level(make_records):
    records = make_records("dali")
    reals = np.flatnonzero(np.asarray(open_records(records).split("val").meta["source_format"]) == 0)
    kwargs = dict(batch_size=16, train=False, image_size=64, num_workers=1, subset=reals)
    cpu, _ = _images(build_loader(records, backend="cpu", **kwargs))
    dali, _ = _images(build_loader(records, backend="dali", **kwargs))
    ffcv, _ = _images(build_loader(make_records("ffcv"), backend="ffcv", **kwargs))
    assert np.array_equal(cpu, ffcv)
    assert np.abs(cpu.astype(int) - dali.astype(int)).mean() <= 0.5


def _fast_jpeg_kwargs(records) -> dict:
    reals = np.flatnonzero(np.asarray(open_records(records).split("val").meta["source_format"]) == 0)
    return dict(backend="cpu", batch_size=16, train=False, image_size=32, num_workers=0, subset=reals)


@requires_turbojpeg  # the DCT-scaled decode is PyTurboJPEG's
def test_fast_jpeg_decode_is_opt_in_and_recorded(make_records):
    records = make_records("dali")
    kwargs = _fast_jpeg_kwargs(records)
    full, fast = build_loader(records, **kwargs), build_loader(records, fast_jpeg_decode=True, **kwargs)
    assert (full.decoder, fast.decoder) == ("full", "dct-scaled")
    a, b = _images(full)[0], _images(fast)[0]
    assert not np.array_equal(a, b) and np.abs(a.astype(int) - b.astype(int)).mean() < 3


@requires_turbojpeg
@requires_backend("ffcv")
def test_fast_jpeg_decode_is_the_same_decoder_on_ffcv(make_records):
    kwargs = _fast_jpeg_kwargs(make_records("dali"))
    cpu = build_loader(make_records("dali"), fast_jpeg_decode=True, **kwargs)
    ffcv = build_loader(make_records("ffcv"), fast_jpeg_decode=True, **{**kwargs, "backend": "ffcv"})
    assert ffcv.decoder == "dct-scaled" and np.array_equal(_images(ffcv)[0], _images(cpu)[0])


def test_fast_jpeg_decode_without_turbojpeg_is_one_line(make_records, without_turbojpeg):
    """The box without PyTurboJPEG: a one-line refusal at build time, not a full decode named "dct-scaled"."""
    records = make_records("dali")
    with pytest.raises(GenImageError, match="fast_jpeg_decode needs libjpeg-turbo's DCT-scaled decode: "
                                            "PyTurboJPEG does not load") as info:
        build_loader(records, fast_jpeg_decode=True, **_fast_jpeg_kwargs(records))
    assert "\n" not in str(info.value)
    assert build_loader(records, **_fast_jpeg_kwargs(records)).decoder == "full"  # the default needs nothing


@pytest.mark.parametrize("backend,fmt", [("cpu", "dali"), ("dali", "dali"), ("ffcv", "ffcv")])
def test_eval_transform_through_every_backend(make_records, demo_tree, backend, fmt):
    records = make_records(fmt)
    subset = _subset(records)
    images, indices = _images(build_loader(records, backend=backend, batch_size=4, train=False, image_size=224,
                                           num_workers=2, subset=subset, eval_transform="timm_resnet50",
                                           degrade="jpeg:65"))
    # timm 0.6.12 transforms_factory.py:147-151 with resnet.py:66-68 (bicubic, crop_pct 0.95)
    ref_tf = transforms.Compose([transforms.Resize(235, interpolation=transforms.InterpolationMode.BICUBIC),
                                 transforms.CenterCrop(224)])
    for j, index in enumerate(indices):
        ref = ref_tf(_reference_degrade(_pil_decode(demo_tree, records, int(index)), "jpeg:65"))
        assert np.array_equal(images[j], np.asarray(ref)), (backend, int(index))


@dataclass(frozen=True)
class NoisyCrop:
    """A tiny train transform (registered only here): a random crop and a random offset, from rng."""

    image_size: int
    offset: int = 10

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        s = self.image_size
        small = np.asarray(Image.fromarray(image).resize((max(s, w // 4), max(s, h // 4)), Image.BILINEAR))
        top = int(rng.integers(0, small.shape[0] - s + 1))
        left = int(rng.integers(0, small.shape[1] - s + 1))
        shift = int(rng.integers(0, self.offset + 1))
        crop = small[top:top + s, left:left + s].astype(np.int16) + shift
        return np.ascontiguousarray(np.clip(crop, 0, 255).astype(np.uint8))


if "test_noisy_crop" not in TRAIN_TRANSFORMS:
    TRAIN_TRANSFORMS.add("test_noisy_crop", NoisyCrop)


@pytest.mark.parametrize("backend,fmt,workers", [("cpu", "dali", 0), ("cpu", "dali", 2), ("dali", "dali", 1),
                                                 ("ffcv", "ffcv", 2)])
def test_train_transforms_are_wired_per_sample_and_deterministic(make_records, demo_tree, backend, fmt, workers):
    records = make_records(fmt)
    loader = build_loader(records, backend=backend, batch_size=8, train=True, image_size=24, num_workers=workers,
                          seed=5, train_transform="test_noisy_crop", transform_options={"offset": 20},
                          split="val", generators=["sdv14", "adm"])
    loader.set_epoch(3)
    images, indices = _images(loader)
    assert len(indices) == loader.num_samples and indices.tolist() != sorted(indices.tolist())
    for j, index in enumerate(indices):
        image = np.asarray(_pil_decode(demo_tree, records, int(index)))
        ref = NoisyCrop(24, offset=20)(image, sample_rng(5, 3, int(index)))
        assert np.array_equal(images[j], ref), (backend, int(index))


def test_one_line_errors(make_records):
    records = make_records("dali")
    kwargs = dict(backend="cpu", batch_size=4, image_size=16, num_workers=0)
    cases = [
        (dict(train=False, eval_transform="timm_resnet"), "unknown eval transform 'timm_resnet'.*did you mean"),
        (dict(train=False, degrade="blurr:3"), "unknown degradation"),
        (dict(train=False, degrade="jpeg:300"), "jpeg quality"),
        (dict(train=True, degrade="blur:3"), "evaluation only"),
        (dict(train=True, train_transform="rcc"), "unknown train transform 'rcc'.*did you mean: rrc"),
        (dict(train=True, transform_options={"offset": 1}), "takes no transform_options"),
        (dict(train=True, train_transform="test_noisy_crop", transform_options={"bad": 1}),
         "unknown option 'bad'; options: offset"),
        (dict(train=False, degrade="jpeg:30", fast_jpeg_decode=True), "fast_jpeg_decode applies only"),
        (dict(train=False, fast_jpeg_decode=True, backend="dali"), "always decodes at full size"),
    ]
    for extra, message in cases:
        with pytest.raises(GenImageError, match=message) as info:
            build_loader(records, **{**kwargs, **extra})
        assert "\n" not in str(info.value)
