"""Source-space evaluation on the device (issue #12, loaders/device_eval.py): the cpu backend on CUDA
decodes at full size (nvJPEG for the JPEG reals), then degrades and applies the detector's eval
transform on the device. Every check compares with an independent pipeline written here with PIL /
scipy / torchvision on the demo tree's original files (tests/test_loaders_eval.py's reference), never
with our host path alone:

- wiring on the CPU: `applies` forced, nvJPEG replaced by torchvision's CPU libjpeg-turbo decode (the
  decoder libjpeg-turbo is; nvJPEG's own rounding is checked on CUDA), the degradations' CPU kernels;
- the Triton kernels this path runs on CUDA, under TRITON_INTERPRET=1 in a subprocess, against PIL's
  JPEG save and scipy's uint8 gaussian_filter: bit-exact;
- on CUDA (skipped here): the whole loader against the reference within nvJPEG's bound.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy.ndimage import gaussian_filter
from torchvision import transforms
from torchvision.io import ImageReadMode, decode_jpeg

from genimage_fast.loaders import build_loader, device_eval, gpu_decode
from genimage_fast.loaders.pipelines import SamplePipeline
from tests.conftest import requires_backend, requires_cuda
from tests.test_loaders_eval import TASK2, _pil_decode, _reference_degrade, _subset

SPECS = ["none", *TASK2]


def cpu_nvjpeg(datas: list[torch.Tensor]) -> list[torch.Tensor]:
    """Stand-in for nvJPEG: torchvision's batched decode on the CPU (libjpeg-turbo, = PIL's pixels)."""
    return list(decode_jpeg(datas, mode=ImageReadMode.RGB))


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device path on the CPU: as if device were CUDA with torchvision's nvJPEG."""
    monkeypatch.setattr(device_eval, "applies", lambda loader: loader.pipeline is not None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_missing", lambda device="cuda": None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_decoder", lambda device: cpu_nvjpeg)


def _batches(loader) -> tuple[np.ndarray, np.ndarray]:
    batches = list(loader)
    images = torch.cat([b.images for b in batches]).permute(0, 2, 3, 1).numpy()
    return images, torch.cat([b.indices for b in batches]).numpy()


def _reference(demo_tree, records, index: int, spec: str, transform: str) -> np.ndarray:
    """PIL decode -> the spec on the full image (PIL / scipy) -> the eval transform as the original calls it."""
    image = _pil_decode(demo_tree, records, index)
    if spec != "none":
        image = _reference_degrade(image, spec)
    if transform == "cnndetection":  # CNNDetection: no resize, CenterCrop(224)
        return np.asarray(transforms.CenterCrop(224)(image))
    # the default eval transform: torchvision Resize(256, antialias) + CenterCrop(224)
    chw = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    return TF.center_crop(TF.resize(chw, 256, antialias=True), [224, 224]).permute(1, 2, 0).numpy()


def test_applies_only_to_eval_pipelines_on_cuda() -> None:
    eval_pipe = SamplePipeline(transform=None, image_size=8, name="timm_resnet50")  # type: ignore[arg-type]
    train_pipe = SamplePipeline(transform=None, image_size=8, train=True, name="timm_resnet50")  # type: ignore[arg-type]
    unknown = SamplePipeline(transform=None, image_size=8, name="a_user_transform")  # type: ignore[arg-type]
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert device_eval.applies(SimpleNamespace(device=cuda, pipeline=eval_pipe))
    assert not device_eval.applies(SimpleNamespace(device=cpu, pipeline=eval_pipe))
    assert not device_eval.applies(SimpleNamespace(device=cuda, pipeline=train_pipe))  # train: host workers
    assert not device_eval.applies(SimpleNamespace(device=cuda, pipeline=unknown))  # no device twin: host
    assert not device_eval.applies(SimpleNamespace(device=cuda, pipeline=None))  # the box path (gpu_decode)


@pytest.mark.parametrize("spec", SPECS)
def test_device_path_equals_the_independent_pipeline(make_records, demo_tree, forced, spec: str) -> None:
    """Task 2 on the full source image, then the eval transform, through the device path's code."""
    records = make_records("dali")
    subset = _subset(records)
    for transform in ("resize_centre", "cnndetection"):
        loader = build_loader(records, backend="cpu", batch_size=4, train=False, image_size=224, num_workers=0,
                              degrade=spec, subset=subset, eval_transform=transform)
        if spec == "none" and transform == "resize_centre":  # the box path: gpu_decode's, not this one
            assert loader._device_eval is None
            continue
        assert loader._device_eval is not None and loader.pipeline_on == "device" and loader.decoder == "nvjpeg"
        got, indices = _batches(loader)
        assert indices.tolist() == subset.tolist()
        for j, index in enumerate(indices):
            ref = _reference(demo_tree, records, int(index), spec, transform).astype(int)
            diff = np.abs(got[j].astype(int) - ref)
            if transform == "cnndetection" and spec.split(":")[0] in ("none", "jpeg", "blur"):
                # no resample anywhere: libjpeg-turbo's JPEG and scipy's uint8 blur come out exact
                assert diff.max() == 0, (spec, transform, int(index), diff.mean(), diff.max())
            else:  # Pillow's fixed-point resample rebuilt (pass order measured on Pillow 13)
                assert diff.mean() <= 0.5 and diff.max() <= 2, (spec, transform, int(index), diff.mean(), diff.max())


def test_device_path_with_workers_jpegs_mixed_with_pngs(make_records, demo_tree, forced) -> None:
    """Workers pack host decodes into one buffer while JPEGs travel as bytes: batches mixing both
    reassemble in order, with several sizes per batch."""
    records = make_records("dali")
    subset = _subset(records)
    serial, _ = _batches(build_loader(records, backend="cpu", batch_size=3, train=False, image_size=224,
                                      num_workers=0, degrade="jpeg:65", subset=subset, eval_transform="cnndetection"))
    loader = build_loader(records, backend="cpu", batch_size=3, train=False, image_size=224, num_workers=2,
                          degrade="jpeg:65", subset=subset, eval_transform="cnndetection")
    got, indices = _batches(loader)
    assert np.array_equal(got, serial)
    for j, index in enumerate(indices):
        assert np.array_equal(got[j], _reference(demo_tree, records, int(index), "jpeg:65", "cnndetection"))


def test_without_nvjpeg_the_workers_decode_everything(make_records, demo_tree, monkeypatch) -> None:
    monkeypatch.setattr(device_eval, "applies", lambda loader: loader.pipeline is not None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_missing", lambda device="cuda": "no nvJPEG here")
    records = make_records("dali")
    subset = _subset(records)
    loader = build_loader(records, backend="cpu", batch_size=4, train=False, image_size=224, num_workers=0,
                          degrade="blur:3", subset=subset, eval_transform="cnndetection")
    assert loader.decoder == "full" and loader.pipeline_on == "device"
    got, indices = _batches(loader)
    for j, index in enumerate(indices):
        assert np.array_equal(got[j], _reference(demo_tree, records, int(index), "blur:3", "cnndetection"))


# ---------------------------------------------------------------------------------------------- kernels


_INTERPRET_SCRIPT = """
import sys, torch
from genimage_fast.loaders.device_eval import SOURCE_DEGRADATIONS
images = torch.load(sys.argv[1])
out = {}
for spec in ("jpeg:30", "jpeg:65", "blur:3", "blur:5"):
    name, value = spec.split(":")
    value = int(value) if name == "jpeg" else float(value)
    out[spec] = [SOURCE_DEGRADATIONS.get(name)(x[None], value, "triton")[0] for x in images]
torch.save(out, sys.argv[2])
"""


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    return np.clip(np.asarray(coarse).astype(int) + rng.integers(-25, 26, (h, w, 3)), 0, 255).astype(np.uint8)


def test_triton_degradations_under_the_interpreter_are_pil_and_scipy(tmp_path: Path) -> None:
    """What the device path runs on CUDA: the Triton JPEG and uint8 blur kernels (odd sizes, so the
    JPEG edge padding and the blur's reflected borders both show) equal PIL's save and scipy itself."""
    photos = [_photo(40, 56, 0), _photo(45, 37, 1), _photo(64, 64, 2)]
    torch.save([torch.from_numpy(p).permute(2, 0, 1).contiguous() for p in photos], tmp_path / "in.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    subprocess.run([sys.executable, "-c", _INTERPRET_SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                   check=True, env=env, timeout=600)
    outs = torch.load(tmp_path / "out.pt")
    for spec, got in outs.items():
        name, value = spec.split(":")
        for photo, out in zip(photos, got, strict=True):
            if name == "jpeg":
                buf = io.BytesIO()
                Image.fromarray(photo).save(buf, format="jpeg", quality=int(value))  # PIL's default: 4:2:0
                ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            else:
                s = float(value)
                ref = gaussian_filter(photo, sigma=(s, s, 0))  # uint8 in: scipy truncates after each pass
            assert np.array_equal(out.permute(1, 2, 0).numpy(), ref), (spec, photo.shape)


# ---------------------------------------------------------------------------------------------- CUDA


@requires_cuda
@pytest.mark.parametrize("spec", SPECS)
def test_cuda_device_path_equals_the_independent_pipeline(make_records, demo_tree, spec: str) -> None:
    """The real thing: nvJPEG + Triton + the device transforms; nvJPEG's IDCT rounds differently from
    libjpeg-turbo (tests/test_gpu_decode.py: <= 1 level mean), so reals get that bound on top."""
    records = make_records("dali")
    subset = _subset(records)
    loader = build_loader(records, backend="cpu", batch_size=4, train=False, image_size=224, num_workers=1,
                          degrade=spec, subset=subset, eval_transform="cnndetection", device="cuda")
    assert loader.pipeline_on == "device"
    got, indices = _batches(loader)
    for j, index in enumerate(indices):
        ref = _reference(demo_tree, records, int(index), spec, "cnndetection").astype(int)
        diff = np.abs(got[j].astype(int) - ref)
        assert diff.mean() <= 1.0 and diff.max() <= 24, (spec, int(index), diff.mean(), diff.max())


@pytest.mark.parametrize("transform", ["timm_resnet50", "timm_vit", "autogan", "f3net", "gramnet", "npr"])
def test_every_device_twin_through_the_loader(make_records, forced, transform: str) -> None:
    """Wiring for the other detectors' transforms: the device path against the host workers' path, whose
    transforms tests/test_eval_transforms.py pins to PIL / cv2 / torchvision, within the device twins'
    own stated bounds (tests/test_device_transforms.py: Pillow exact per pass, cv2 within 1 level)."""
    records = make_records("dali")
    subset = _subset(records)
    kwargs = dict(backend="cpu", batch_size=4, train=False, image_size=224, num_workers=0, degrade="blur:3",
                  subset=subset, eval_transform=transform)
    device_path = build_loader(records, **kwargs)
    assert device_path._device_eval is not None
    got, _ = _batches(device_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(device_eval, "applies", lambda loader: False)
        host_path = build_loader(records, **kwargs)
        assert host_path.pipeline_on == "host"
        want, _ = _batches(host_path)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.mean() <= 0.3 and diff.max() <= 3, (transform, diff.mean(), diff.max())


def test_pipeline_on_host_keeps_everything_in_the_workers(make_records, forced) -> None:
    """build_loader(pipeline_on="host"): PIL's exact pixels even where the device path applies."""
    from genimage_fast.errors import GenImageError

    records = make_records("dali")
    kwargs = dict(backend="cpu", batch_size=4, train=False, image_size=224, num_workers=0, degrade="jpeg:30",
                  subset=_subset(records), eval_transform="cnndetection")
    loader = build_loader(records, pipeline_on="host", **kwargs)
    assert loader._device_eval is None and loader.pipeline_on == "host" and loader.decoder == "full"
    assert build_loader(records, **kwargs).pipeline_on == "device"
    with pytest.raises(GenImageError, match="unknown pipeline_on 'gpu'; choose from: auto, host"):
        build_loader(records, pipeline_on="gpu", **kwargs)


@requires_backend("dali")
@pytest.mark.parametrize("spec", ["jpeg:30", "blur:3", "lr:64"])
def test_dali_backend_runs_the_same_device_stage(make_records, demo_tree, forced, spec: str) -> None:
    """The dali backend on CUDA: DALI's CPU decode (PIL's pixels), then the device stage of the cpu backend."""
    records = make_records("dali")
    subset = _subset(records)
    loader = build_loader(records, backend="dali", batch_size=4, train=False, image_size=224, num_workers=1,
                          degrade=spec, subset=subset, eval_transform="cnndetection")
    assert loader.pipeline_on == "device" and loader.decoder == "full"
    got, indices = _batches(loader)
    assert indices.tolist() == subset.tolist()
    for j, index in enumerate(indices):
        diff = np.abs(got[j].astype(int) - _reference(demo_tree, records, int(index), spec, "cnndetection").astype(int))
        if spec.startswith("lr"):
            assert diff.mean() <= 0.5 and diff.max() <= 2, (spec, int(index), diff.mean(), diff.max())
        else:
            assert diff.max() == 0, (spec, int(index), diff.mean(), diff.max())


def test_a_sample_that_cannot_be_decoded_names_its_record_file(make_records, forced, monkeypatch) -> None:
    """Bad input on the device path is one GenImageError naming the shard, not a worker traceback (batch 0
    holds only JPEG reals, which go to the decoder stand-in: the first host decode is in batch 1)."""
    from genimage_fast.errors import GenImageError

    def broken(kind, payload):  # noqa: ANN001, ANN202 - stands in for a damaged PNG
        raise ValueError("broken PNG data")

    monkeypatch.setattr(device_eval, "decode_full", broken)
    records = make_records("dali")
    loader = build_loader(records, backend="cpu", batch_size=4, train=False, image_size=224, num_workers=0,
                          degrade="blur:3", subset=_subset(records), eval_transform="cnndetection")
    with pytest.raises(GenImageError, match=r"val-\d+\.tar: cannot read batch 1: ValueError: broken PNG data"):
        list(loader)
