"""genimage_fast.degrade: the public ops, specs, the nn.Module and CNNSpot's augmentation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from genimage_fast import degrade
from tests.conftest import requires_cuda


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.array(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def batch(photo: np.ndarray) -> torch.Tensor:
    """Three 61x75 photo crops (odd sizes: partial JPEG MCUs, odd chroma)."""
    crops = [photo[y : y + 61, x : x + 75] for y, x in ((10, 20), (250, 300), (450, 100))]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1) for c in crops]).contiguous()


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def pil_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


# ---------------------------------------------------------------------------------------------- jpeg


def test_jpeg_cpu_path_is_libjpeg_itself(batch: torch.Tensor) -> None:
    out = degrade.jpeg(batch, torch.tensor([30, 65, 95]))
    for i, q in enumerate((30, 65, 95)):
        np.testing.assert_array_equal(hwc(out[i]), pil_jpeg(hwc(batch[i]), q))


def test_jpeg_torch_backend_meets_the_bounds(batch: torch.Tensor) -> None:
    out = degrade.jpeg(batch, 65, backend="torch")
    for i in range(len(batch)):
        ref = pil_jpeg(hwc(batch[i]), 65)
        assert psnr(hwc(out[i]), ref) >= 45.0
        assert np.abs(hwc(out[i]).astype(int) - ref).mean() <= 0.7


@pytest.mark.parametrize("quality", [0, 101, -5, 3.0, True, torch.tensor([30, 0, 40]), torch.tensor([1.0, 2, 3]),
                                     torch.tensor([30, 40])])
def test_jpeg_rejects_bad_quality(batch: torch.Tensor, quality: object) -> None:
    with pytest.raises(ValueError):
        degrade.jpeg(batch, quality)


def test_bad_images_and_backends_raise_value_error(batch: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        degrade.jpeg(batch.float(), 30)
    with pytest.raises(ValueError):
        degrade.gaussian_blur(batch[:, :1], 1.0)
    with pytest.raises(ValueError):
        degrade.jpeg(batch, 30, backend="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="TRITON_INTERPRET"):
            degrade.gaussian_blur(batch, 1.0, backend="triton")


# ---------------------------------------------------------------------------------------------- blur


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_blur_per_sample_sigma_matches_scipy(batch: torch.Tensor, backend: str) -> None:
    sigmas = [1.0, 3.0, 0.0]
    out = degrade.gaussian_blur(batch, torch.tensor(sigmas), backend=backend)
    exact = degrade.gaussian_blur(batch, torch.tensor(sigmas), backend=backend, truncate_uint8=True)
    for i, s in enumerate(sigmas):
        img = hwc(batch[i])
        if s == 0:
            assert torch.equal(out[i], batch[i]) and torch.equal(exact[i], batch[i])
            continue
        ref = np.floor(gaussian_filter(img.astype(np.float64), sigma=(s, s, 0)) + 0.5)
        assert np.abs(hwc(out[i]).astype(int) - ref).max() <= 1
        np.testing.assert_array_equal(hwc(exact[i]), gaussian_filter(img, sigma=(s, s, 0)))


def test_blur_rejects_bad_sigma(batch: torch.Tensor) -> None:
    for sigma in (-1.0, float("nan"), torch.tensor([1.0, -0.5, 2.0]), torch.ones(2), "3"):
        with pytest.raises(ValueError):
            degrade.gaussian_blur(batch, sigma)


# ---------------------------------------------------------------------------------------------- low resolution


def test_low_resolution_is_antialiased_bilinear_like_pil(photo: np.ndarray) -> None:
    img = np.ascontiguousarray(photo[:224, :224])
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    for size in (112, 64):
        out = degrade.low_resolution(x, size)
        assert out.shape == (1, 3, size, size) and out.dtype == torch.uint8
        ref = np.array(Image.fromarray(img).resize((size, size), Image.BILINEAR))
        diff = np.abs(hwc(out[0]).astype(int) - ref)
        assert diff.mean() < 0.5 and diff.max() <= 2
    with pytest.raises(ValueError):
        degrade.low_resolution(x, 0)


# ---------------------------------------------------------------------------------------------- specs and module


def test_specs_parse_and_apply(batch: torch.Tensor) -> None:
    task2 = "lr:112,lr:64,jpeg:65,jpeg:30,blur:3,blur:5".split(",")
    assert [degrade.parse_spec(s) for s in task2] == [("lr", 112), ("lr", 64), ("jpeg", 65), ("jpeg", 30),
                                                     ("blur", 3.0), ("blur", 5.0)]
    assert degrade.parse_spec("none") == ("none", None)
    assert set(degrade.DEGRADATIONS.names()) == {"none", "lr", "jpeg", "blur"}
    assert torch.equal(degrade.apply(batch, "none"), batch)
    assert torch.equal(degrade.apply(batch, "jpeg:30"), degrade.jpeg(batch, 30))
    assert torch.equal(degrade.apply(batch, "blur:1.5"), degrade.gaussian_blur(batch, 1.5))
    assert degrade.apply(batch, "lr:32").shape == (3, 3, 32, 32)
    for bad in ("jpeg", "jpeg:0", "jpeg:x", "blur:-1", "lr:0", "none:1", "sharpen:2", "", "JPEG:30"):
        with pytest.raises(ValueError):
            degrade.parse_spec(bad)


def test_degrade_module_in_a_pipeline(batch: torch.Tensor) -> None:
    pipe = torch.nn.Sequential(degrade.Degrade("blur:2"), degrade.Degrade("jpeg:50"))
    assert torch.equal(pipe(batch), degrade.jpeg(degrade.gaussian_blur(batch, 2.0), 50))
    assert "jpeg:50" in repr(pipe)
    with pytest.raises(ValueError):
        degrade.Degrade("jpeg:200")
    with pytest.raises(ValueError):
        degrade.Degrade("jpeg:20", backend="gpu")


# ---------------------------------------------------------------------------------------------- CNNSpot


def test_cnnspot_matches_cnndetection_data_augment(batch: torch.Tensor) -> None:
    """Redo CNNDetection's per-image procedure with scipy on uint8 arrays and PIL, same draws."""
    x = torch.cat([batch, batch.flip(0), batch])  # 9 images so both coins land both ways
    out = degrade.cnnspot(x, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    n = len(x)
    blur_coin, sigma = torch.rand(n, generator=g), torch.rand(n, generator=g, dtype=torch.float64) * 3.0
    jpeg_coin, quality = torch.rand(n, generator=g), torch.randint(30, 101, (n,), generator=g)
    assert 0 < int((blur_coin < 0.5).sum()) < n and 0 < int((jpeg_coin < 0.5).sum()) < n
    for i in range(n):
        img = hwc(x[i]).copy()
        if blur_coin[i] < 0.5:
            for c in range(3):  # data/datasets.py gaussian_blur: in place on the uint8 array
                gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=float(sigma[i]))
        if jpeg_coin[i] < 0.5:
            img = pil_jpeg(img, int(quality[i]))
        np.testing.assert_array_equal(hwc(out[i]), img)


def test_cnnspot_probabilities_and_reproducibility(batch: torch.Tensor) -> None:
    assert torch.equal(degrade.cnnspot(batch, p_blur=0.0, p_jpeg=0.0), batch)
    a = degrade.cnnspot(batch, generator=torch.Generator().manual_seed(7))
    b = degrade.cnnspot(batch, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    always = degrade.cnnspot(batch, p_blur=1.0, p_jpeg=1.0, quality=(30, 30),
                             generator=torch.Generator().manual_seed(1))
    assert all(not torch.equal(always[i], batch[i]) for i in range(len(batch)))
    for bad in ({"p_blur": 1.5}, {"p_jpeg": -0.1}, {"quality": (50, 20)}, {"quality": (0, 90)}, {"sigma_max": -1},
                {"sigma_max": float("inf")}):
        with pytest.raises(ValueError):
            degrade.cnnspot(batch, **bad)


# ---------------------------------------------------------------------------------------------- GPU


@requires_cuda
def test_auto_backend_on_cuda_runs_the_kernels(batch: torch.Tensor) -> None:
    gpu = batch.cuda()
    out = degrade.jpeg(gpu, 65)
    assert out.is_cuda
    ref = degrade.jpeg(batch, 65, backend="torch")
    assert (out.cpu().int() - ref.int()).abs().float().mean() < 0.05
    exact = degrade.gaussian_blur(gpu, torch.tensor([1.0, 3.0, 5.0]), truncate_uint8=True)
    assert torch.equal(exact.cpu(), degrade.gaussian_blur(batch, torch.tensor([1.0, 3.0, 5.0]), truncate_uint8=True))
    g = torch.Generator().manual_seed(0)
    assert degrade.cnnspot(gpu, generator=g).is_cuda
