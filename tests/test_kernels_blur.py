"""Gaussian blur: the torch reference and the Triton kernel against scipy.ndimage.gaussian_filter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from genimage_fast.kernels.blur_reference import (
    gaussian_blur_reference,
    gaussian_radius,
    reflect_index,
    scipy_weights,
    weight_table,
)
from tests.conftest import requires_cuda

SIGMAS = (1.0, 3.0, 5.0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.array(Image.open(path).convert("RGB"))


def to_batch(*images: np.ndarray) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.ascontiguousarray(i)).permute(2, 0, 1) for i in images]).contiguous()


def scipy_blur(img: np.ndarray, sigma: float, truncate_uint8: bool) -> np.ndarray:
    """What the op promises: scipy on float input rounded, or scipy on the uint8 array itself."""
    if truncate_uint8:
        return gaussian_filter(img, sigma=(sigma, sigma, 0))
    out = gaussian_filter(img.astype(np.float64), sigma=(sigma, sigma, 0))
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def cnnspot_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """CNNDetection data/datasets.py gaussian_blur: per channel, in place, on the uint8 array."""
    img = img.copy()
    for c in range(3):
        gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=sigma)
    return img


def test_weights_and_radius_follow_scipy() -> None:
    from scipy.ndimage import _filters  # the private helper scipy itself uses

    for sigma in (0.3, 1.0, 2.7, 3.0, 5.0):
        radius = gaussian_radius(sigma)
        assert radius == int(4.0 * sigma + 0.5)
        expected = _filters._gaussian_kernel1d(sigma, 0, radius)[::-1]
        np.testing.assert_array_equal(scipy_weights(sigma), expected[radius:])
    assert scipy_weights(0.0).tolist() == [1.0]


def test_reflect_index_is_numpy_symmetric_padding() -> None:
    for length in (1, 2, 5, 8):
        pad = 3 * length + 2
        expected = np.pad(np.arange(length), pad, mode="symmetric")
        got = reflect_index(torch.arange(-pad, length + pad), length)
        np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("truncate_uint8", [False, True])
def test_reference_matches_scipy_borders_included(photo: np.ndarray, truncate_uint8: bool) -> None:
    # odd sizes, and a 7x9 image narrower than the sigma-5 radius (repeated reflection)
    for img in (photo[13:50, 5:58], photo[200:261, 300:345], photo[400:407, 100:109]):
        weights, _ = weight_table(SIGMAS)
        out = gaussian_blur_reference(to_batch(img, img, img), weights, truncate_uint8)
        for i, sigma in enumerate(SIGMAS):
            expected = scipy_blur(img, sigma, truncate_uint8)
            diff = np.abs(out[i].permute(1, 2, 0).numpy().astype(int) - expected.astype(int))
            assert diff.max() <= (0 if truncate_uint8 else 1), (img.shape, sigma, diff.max())
            if truncate_uint8:  # CNNSpot's own per-channel call gives the same array
                np.testing.assert_array_equal(out[i].permute(1, 2, 0).numpy(), cnnspot_blur(img, sigma))


def test_reference_sigma_zero_is_identity_and_truncation_darkens(photo: np.ndarray) -> None:
    x = to_batch(photo[:32, :40], np.full((32, 40, 3), 100, np.uint8))
    weights, _ = weight_table([0.0, 2.3])
    out = gaussian_blur_reference(x, weights, truncate_uint8=True)
    assert torch.equal(out[0], x[0])
    from scipy.ndimage import gaussian_filter

    # flat 100 comes out darker: scipy's float sums fall just below 100 and truncate (CNNSpot); how far
    # (99 or 98) depends on scipy's summation, so scipy itself is the reference
    theirs = gaussian_filter(np.full((32, 40), 100, np.uint8), 2.3)
    assert int(out[1].max()) < 100 and np.array_equal(out[1, 0].numpy(), theirs)


_INTERPRET_SCRIPT = """
import sys, torch
from genimage_fast.kernels.blur_reference import weight_table
from genimage_fast.kernels.blur_triton import gaussian_blur_triton
x, sigmas = torch.load(sys.argv[1])
w, r = weight_table(sigmas)
from genimage_fast import degrade
outs = {t: gaussian_blur_triton(x, w, r, t) for t in (False, True)}
outs["api"] = degrade.gaussian_blur(x, torch.tensor(sigmas), backend="triton", truncate_uint8=True)
torch.save(outs, sys.argv[2])
"""


def test_triton_kernel_under_interpreter_matches_scipy(photo: np.ndarray, tmp_path: Path) -> None:
    imgs = [photo[13:45, 5:53], photo[200:232, 300:348], photo[400:432, 100:148]]
    sigmas = [1.0, 3.0, 0.0]  # per-sample sigma in one launch, 0 = identity
    torch.save((to_batch(*imgs), sigmas), tmp_path / "in.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    subprocess.run([sys.executable, "-c", _INTERPRET_SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                   check=True, env=env, timeout=300)
    outs = torch.load(tmp_path / "out.pt")
    assert torch.equal(outs.pop("api"), outs[True])  # degrade.gaussian_blur(backend="triton") runs it
    weights, _ = weight_table(sigmas)
    for truncate_uint8, out in outs.items():
        assert torch.equal(out, gaussian_blur_reference(to_batch(*imgs), weights, truncate_uint8))
        for i, (img, sigma) in enumerate(zip(imgs, sigmas, strict=True)):
            expected = scipy_blur(img, sigma, truncate_uint8) if sigma else img
            diff = np.abs(out[i].permute(1, 2, 0).numpy().astype(int) - expected.astype(int))
            assert diff.max() <= (0 if truncate_uint8 else 1)


@requires_cuda
def test_triton_kernel_on_cuda_matches_scipy(photo: np.ndarray) -> None:
    from genimage_fast.kernels.blur_triton import gaussian_blur_triton

    imgs = [photo[13:50, 5:58], photo[200:237, 300:353], photo[400:437, 100:153]]
    weights, radii = weight_table(SIGMAS)
    for truncate_uint8 in (False, True):
        out = gaussian_blur_triton(to_batch(*imgs).cuda(), weights, radii, truncate_uint8).cpu()
        for i, (img, sigma) in enumerate(zip(imgs, SIGMAS, strict=True)):
            diff = np.abs(out[i].permute(1, 2, 0).numpy().astype(int) - scipy_blur(img, sigma, truncate_uint8))
            assert diff.max() <= (0 if truncate_uint8 else 1)


def test_blur_launcher_chunks_the_batch_and_uploads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host side of the launcher with a recording stand-in for the kernel: each launch gets its
    own samples' views and tables (grid z <= the limit), two passes per chunk."""
    pytest.importorskip("triton")
    from genimage_fast.kernels import blur_triton, runtime

    calls = []

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kw: calls.append((grid, args, kw))

    monkeypatch.setattr(blur_triton, "blur_pass_kernel", Recorder())
    monkeypatch.setattr(blur_triton, "batch_chunks", lambda n: runtime.batch_chunks(n, limit=3))
    x = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    weights, radii = weight_table([0.5 * i for i in range(7)])
    blur_triton.gaussian_blur_triton(x, weights, radii, True, block=(8, 8))
    assert [g for g, _, _ in calls] == [(1, 1, 3)] * 4 + [(1, 1, 1)] * 2
    for (_, args, kw), start in zip(calls[::2], (0, 3, 6), strict=True):
        n = len(args[0])
        assert args[0].data_ptr() == x[start].data_ptr() and torch.equal(args[3], radii[start : start + n])
        assert torch.equal(args[2], weights[start : start + n]) and kw["enable_fp_fusion"] is False
