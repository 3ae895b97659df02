"""The demo tree: official layout and names, native sizes, real JPEGs, determinism, learnable artifacts."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import median_filter

from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATORS
from genimage_fast.sources import make_demo_data, scan_tree
from genimage_fast.sources.png import encode_png_rgb
from genimage_fast.sources.synth import power_law_fields

# The demo_tree fixture (conftest) is made with classes=2, per_class=3: val gets max(2, 3 // 2) = 2 per class.
CLASSES, TRAIN_PER_CLASS, VAL_PER_CLASS = 2, 3, 2


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


# The release's patterns, written out from DESIGN §2's examples (not derived from our formats).
OFFICIAL_NAMES = {
    "midjourney": r"\d+_midjourney_\d+\.png",  # 208_midjourney_76.png
    "sdv14": r"\d{3}_sdv4_\d{5}\.png",  # 033_sdv4_00134.png
    "sdv15": r"\d{3}_sdv5_\d{5}\.png",
    "adm": r"\d+_adm_\d+\.PNG",  # 115_adm_142.PNG
    "glide": r"GLIDE_1000_200_08_\d+_glide_\d{5}\.png",  # GLIDE_1000_200_08_808_glide_00033.png
    "wukong": r"\d+_wukong_image\d+\.png",  # 0_wukong_image128.png
    "vqdm": r"\d{3}_vqdm_\d{5}\.png",
    "biggan": r"\d{3}_biggan_\d{5}\.png",  # 116_biggan_00094.png
}


def test_layout_counts_and_official_names(demo_tree: Path) -> None:
    result = scan_tree(demo_tree)
    assert result.skipped == []
    per_split = {"train": CLASSES * TRAIN_PER_CLASS, "val": CLASSES * VAL_PER_CLASS}
    assert result.counts() == {
        g.name: {split: {"real": n, "fake": n} for split, n in per_split.items()} for g in GENERATORS
    }
    fake_classes = {s.class_id for s in result.samples if s.label == 1}
    assert len(fake_classes) == CLASSES and all(0 <= c < 1000 for c in fake_classes)
    for s in result.samples:
        gen = GENERATORS[s.generator]
        assert s.relpath.startswith(f"{gen.parents[0]}/{gen.folder}/{s.split}/{'ai' if s.label else 'nature'}/")
        name = s.relpath.rsplit("/", 1)[1]
        if s.label == 1:
            assert re.fullmatch(OFFICIAL_NAMES[gen.name], name), name
        elif s.split == "train":
            assert re.fullmatch(r"n\d{8}_[1-9]\d*\.JPEG", name) and s.class_id in fake_classes
        else:
            assert re.fullmatch(r"ILSVRC2012_val_\d{8}\.JPEG", name) and s.class_id == -1
    names = [s.relpath for s in result.samples]
    assert len(set(names)) == len(names)


def _pil_quantization(quality: int) -> dict:
    """PIL's (libjpeg's) quantisation tables at a quality: the reference a real's quality is read from."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG", quality=quality)
    return Image.open(buffer).quantization


def test_native_fake_sizes_and_varied_real_jpegs(demo_tree: Path) -> None:
    tables = {q: _pil_quantization(q) for q in range(75, 97)}
    qualities: Counter[int] = Counter()
    modes: Counter[str] = Counter()
    for s in scan_tree(demo_tree).samples:
        with Image.open(s.path) as image:
            if s.label == 1:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (GENERATORS[s.generator].size,) * 2)
                continue
            assert image.format == "JPEG"
            width, height = image.size
            assert width != height and 160 <= min(width, height) and max(width, height) <= 500
            modes[image.mode] += 1
            if image.mode == "RGB":
                (quality,) = [q for q, t in tables.items() if t == image.quantization]
                qualities[quality] += 1
    assert modes["L"] == 1 and modes["CMYK"] == 1  # one grayscale and one CMYK JPEG, as in ImageNet
    assert qualities[96] >= sum(qualities.values()) / 2  # mostly q96
    assert len(qualities) >= 3  # and some others in 75..95


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "a"
    assert main(["demo-data", str(first), "--classes", "1", "--per-class", "1", "--seed", "7"]) == 0
    assert "48 images (24 fake, 24 real)" in capsys.readouterr().out
    second = make_demo_data(tmp_path / "b", classes=1, per_class=1, seed=7, workers=2)
    other = make_demo_data(tmp_path / "c", classes=1, per_class=1, seed=8)
    digests = _digests(first)
    assert len(digests) == len(GENERATORS) * 2 * (1 + 2)
    assert digests == _digests(second)
    assert set(_digests(other).values()).isdisjoint(digests.values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_refuses_a_non_empty_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(GenImageError, match="not an empty folder"):
        make_demo_data(tmp_path, classes=1, per_class=1)
    assert main(["demo-data", str(tmp_path), "--classes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an empty folder" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(GenImageError, match="--classes"):
        make_demo_data(tmp_path / "new", classes=1001)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 48)])
def test_png_writer_round_trips_through_pil(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    for pixels in (
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),  # noise: every filter difference wraps
        np.broadcast_to(np.arange(shape[1], dtype=np.uint8)[None, :, None] * 3, (*shape, 3)),  # a smooth ramp
    ):
        data = encode_png_rgb(pixels)
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (shape[1], shape[0]))
            assert np.array_equal(np.asarray(image), pixels)
        assert encode_png_rgb(pixels.copy()) == data
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        encode_png_rgb(np.zeros((4, 4, 4), np.uint8))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_texture_fields_follow_the_power_law(beta: float) -> None:
    """Log-log slope of the radially averaged power spectrum (numpy.fft) is -2 * beta."""
    fields = power_law_fields(np.random.default_rng(0), 8, 128, 128, beta)
    assert np.allclose(fields.mean(axis=(1, 2)), 0, atol=1e-4) and np.allclose(fields.std(axis=(1, 2)), 1, atol=1e-3)
    power = (np.abs(np.fft.fft2(fields)) ** 2).mean(axis=0)
    fy, fx = np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij")
    radius = np.hypot(fy, fx)
    bands = np.geomspace(0.02, 0.4, 12)
    centres = np.sqrt(bands[:-1] * bands[1:])
    means = [power[(radius >= lo) & (radius < hi)].mean() for lo, hi in zip(bands[:-1], bands[1:], strict=True)]
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    assert abs(slope + 2 * beta) < 0.25


def _noise_residual_peak(paths: list[Path], size: int = 128) -> float:
    """Nyquist peak over median of |fft2| of the mean noise residual (image - 3x3 median), centre crops."""
    residuals = []
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L"), np.float32)
        top, left = (grey.shape[0] - size) // 2, (grey.shape[1] - size) // 2
        crop = grey[top : top + size, left : left + size]
        residuals.append(crop - median_filter(crop, size=3))
    spectrum = np.abs(np.fft.fft2(np.mean(residuals, axis=0)))
    half = size // 2
    return float(max(spectrum[half, half], spectrum[0, half], spectrum[half, 0]) / np.median(spectrum))


def test_biggan_residual_spectrum_has_grid_peaks_the_diffusion_fakes_lack(demo_tree: Path) -> None:
    fakes: dict[int, list[Path]] = {}
    for s in scan_tree(demo_tree).samples:
        if s.label == 1:
            fakes.setdefault(s.generator, []).append(s.path)
    peaks = {GENERATORS[g].name: _noise_residual_peak(paths) for g, paths in fakes.items()}
    biggan = peaks.pop("biggan")
    assert biggan > 100
    assert biggan > 10 * max(peaks.values()), peaks


def _downscaled_features(path: Path) -> list[float]:
    """Two statistics of a 64 px centre crop: colourfulness and fine-detail energy relative to contrast."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        small = image.crop((left, top, left + side, top + side)).resize((64, 64), Image.Resampling.BILINEAR)
    x = np.asarray(small, np.float32)
    grey = x.mean(axis=2)
    laplace = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return [np.log((x - grey[..., None]).std() + 1), np.log(np.abs(laplace).mean() + 1e-3) - np.log(grey.std() + 1e-3)]


def test_real_vs_fake_cues_survive_downscaling(demo_tree: Path) -> None:
    """A nearest-centroid rule on two 64 px statistics, fitted on train, separates val real from fake."""
    data: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for s in scan_tree(demo_tree).samples:
        data[s.split][0].append(_downscaled_features(s.path))
        data[s.split][1].append(s.label)
    x, y = (np.asarray(v) for v in data["train"])
    xv, yv = (np.asarray(v) for v in data["val"])
    mean, std = x.mean(axis=0), x.std(axis=0)
    z, zv = (x - mean) / std, (xv - mean) / std
    centroids = np.stack([z[y == 0].mean(axis=0), z[y == 1].mean(axis=0)])
    predicted = np.argmin(((zv[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert (predicted == yv).mean() >= 0.9


@pytest.mark.heavy
def test_small_cnn_learns_real_vs_fake_at_64px(tmp_path: Path) -> None:
    """The property the demo recipe relies on: a tiny CNN on 64 px images reaches >= 90% on val."""
    import torch
    from torch import nn

    tree = make_demo_data(tmp_path / "demo", classes=4, per_class=8, seed=0)
    images: dict[str, list] = {"train": [], "val": []}
    labels: dict[str, list] = {"train": [], "val": []}
    for s in scan_tree(tree).samples:
        with Image.open(s.path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            small = image.crop((left, top, left + side, top + side)).resize((64, 64), Image.Resampling.BILINEAR)
        images[s.split].append(np.asarray(small))
        labels[s.split].append(s.label)
    x = {k: torch.from_numpy(np.stack(v)).permute(0, 3, 1, 2).float() / 255 for k, v in images.items()}
    y = {k: torch.tensor(v) for k, v in labels.items()}
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 2),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(15):
        order = torch.randperm(len(y["train"]))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            loss = nn.functional.cross_entropy(net(x["train"][batch]), y["train"][batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (net(x["val"]).argmax(dim=1) == y["val"]).float().mean().item()
    assert accuracy >= 0.9
