"""GPU JPEG decode without DALI (issue #17 item 5): which samples go to nvJPEG, PIL's box geometry
rebuilt for the device resize (against PIL itself), batch assembly (against the cpu backend's own
decode), and on CUDA the whole loader against the CPU decode (<= 1 level mean)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from genimage_fast.loaders import build_loader
from genimage_fast.loaders.cpu import BatchDecoder
from genimage_fast.loaders.gpu_decode import (
    NVJPEG,
    SplitDecoder,
    applies,
    assemble,
    jpeg_frame,
    nvjpeg_missing,
    plan_resize,
    resize_on_device,
    route,
)
from genimage_fast.loaders.transforms import pixel_box
from tests.conftest import requires_cuda


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth structure plus noise: every resampling difference shows."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    noisy = np.asarray(coarse).astype(int) + rng.integers(-20, 21, (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def encode(img: np.ndarray, mode: str = "RGB", **kw) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(img)
    (im.convert(mode) if mode != "RGB" else im).save(buf, format="JPEG" if kw.get("fmt") is None else kw.pop("fmt"),
                                                      **kw)
    return buf.getvalue()


def test_route_sends_only_8bit_colour_jpegs_to_nvjpeg() -> None:
    img = photo(40, 56, 0)
    assert route("jpeg", encode(img, quality=90))
    assert route("jpeg", encode(img, quality=90, progressive=True))
    assert route("png", encode(img, quality=90))  # a '.png' that holds a JPEG: the bytes decide
    assert jpeg_frame(encode(img, quality=90))[1:] == (8, 3)
    assert not route("jpeg", encode(img, "L", quality=90))  # grayscale: the workers convert like PIL
    assert not route("jpeg", encode(img, "CMYK", quality=90))
    assert not route("png", encode(img, fmt="PNG"))
    assert not route("raw", img)
    assert not route("jpeg", b"\xff\xd8\xff\xda junk")


@pytest.mark.parametrize("seed", range(6))
def test_device_box_resize_is_pils_box_resize(seed: int) -> None:
    """The geometry of the CPU path: PIL's antialiased bilinear resize of a fractional box, then the flip."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 120)), int(rng.integers(20, 120))
    img = photo(h, w, seed)
    size = int(rng.choice([16, 24, 48, 160]))  # shrinks and enlargements
    x0, y0 = rng.uniform(0, 0.4, 2)
    box = np.array([x0, y0, x0 + rng.uniform(0.2, 0.6), y0 + rng.uniform(0.2, 0.6)])
    flip = bool(seed % 2)
    ref = Image.fromarray(img).resize((size, size), Image.BILINEAR, box=pixel_box(box, w, h))
    ref = np.asarray(ref.transpose(Image.FLIP_LEFT_RIGHT) if flip else ref).astype(int)
    plan = plan_resize(h, w, box, size, flip)
    got = resize_on_device(torch.from_numpy(img).permute(2, 0, 1), plan, torch.from_numpy(plan.wy),
                           torch.from_numpy(plan.wx)).permute(1, 2, 0).numpy().astype(int)
    diff = np.abs(got - ref)
    # Exact up to rounding: PIL rounds the intermediate pass to uint8 in fixed point, and Pillow builds
    # differ in which axis they resample first (13.0 here picks vertical-first for some boxes).
    assert diff.max() <= 1 and diff.mean() <= 0.3, (diff.max(), diff.mean())


def cpu_decode(datas: list[torch.Tensor]) -> list[torch.Tensor]:
    return [decode_jpeg(d, mode=ImageReadMode.RGB) for d in datas]  # libjpeg-turbo, as PIL


def test_assembled_batches_equal_the_cpu_backend(make_records) -> None:
    loader = build_loader(make_records("dali"), backend="cpu", train=True, image_size=32, batch_size=8,
                          num_workers=0, seed=3)
    plans = loader.planner.batches(0)
    dataset = BatchDecoder(loader.records, loader.split_name, plans, 32)
    split = SplitDecoder(dataset)
    routed = 0
    for b, plan in enumerate(plans):
        ref = dataset[b]
        part = split[b]
        got = assemble(part, plan, 32, torch.device("cpu"), cpu_decode)
        assert got.shape == ref.shape == (len(plan), 3, 32, 32)
        keep = [j for j in range(len(plan)) if j not in set(part.positions.tolist())]
        assert torch.equal(got[keep], ref[keep])  # decoded by the workers exactly as before
        diff = (got.int() - ref.int()).abs().float()
        assert diff.mean() <= 0.5 and diff.max() <= 8, (diff.mean(), diff.max())  # PIL vs cv2 enlargements
        routed += len(part.jpegs)
    assert routed > 0  # the demo's reals are JPEGs


def test_applies_only_on_the_cuda_box_path() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    box = SimpleNamespace(device=cuda, pipeline=None, fast_jpeg=False)
    assert applies(box) == (nvjpeg_missing("cuda") is None)
    if not torch.cuda.is_available():
        assert nvjpeg_missing("cuda") == "CUDA is not available" and not applies(box)
    assert not applies(SimpleNamespace(device=cpu, pipeline=None, fast_jpeg=False))
    assert not applies(SimpleNamespace(device=cuda, pipeline=object(), fast_jpeg=False))
    assert not applies(SimpleNamespace(device=cuda, pipeline=None, fast_jpeg=True))


@requires_cuda
@pytest.mark.parametrize("train", [True, False])
def test_cuda_nvjpeg_loader_matches_the_cpu_decode(make_records, train: bool) -> None:
    assert nvjpeg_missing("cuda:0") is None  # the GPU machine's torchvision has nvJPEG
    kw = dict(backend="cpu", train=train, image_size=48, batch_size=8, num_workers=1, seed=5)
    records = make_records("dali")
    gpu = build_loader(records, device="cuda", **kw)
    assert gpu.decoder == NVJPEG
    host = list(build_loader(records, **kw))
    dev = list(gpu)
    assert all(b.images.is_cuda for b in dev)
    a = torch.cat([b.images.cpu() for b in dev]).int()
    b = torch.cat([b.images for b in host]).int()
    assert torch.equal(torch.cat([x.indices.cpu() for x in dev]), torch.cat([x.indices for x in host]))
    assert (a - b).abs().float().mean() <= 1.0


@pytest.mark.parametrize("workers", [0, 1])
def test_cpu_backend_wiring_with_a_stand_in_decoder(make_records, monkeypatch, workers: int) -> None:
    """The cpu backend's hook end to end (DataLoader workers, batch order, metadata), with torchvision's
    CPU decoder standing in for nvJPEG so it runs without a GPU."""
    import genimage_fast.loaders.gpu_decode as gd

    kw = dict(backend="cpu", train=True, image_size=32, batch_size=8, num_workers=workers, seed=2)
    records = make_records("dali")
    plain = list(build_loader(records, **kw))
    monkeypatch.setattr(gd, "applies", lambda loader: True)
    monkeypatch.setattr(gd, "nvjpeg_decoder", lambda device: cpu_decode)
    loader = build_loader(records, **kw)
    assert loader.decoder == NVJPEG
    routed = list(loader)
    assert len(routed) == len(plain) > 0
    for a, b in zip(routed, plain, strict=True):
        assert torch.equal(a.indices, b.indices) and torch.equal(a.labels, b.labels)
        assert a.images.shape == b.images.shape
        assert (a.images.int() - b.images.int()).abs().float().mean() <= 0.5
