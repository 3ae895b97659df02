"""The spectra command on demo data: GAN grid vs diffusion, outputs, records = tree, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES
from genimage_fast.spectral import average_spectrum
from genimage_fast.spectral.analysis import periodic_frequencies, periodic_peak_score
from genimage_fast.spectral.figure import compute_spectra, spectra_command
from genimage_fast.spectral.inputs import collect_groups, fit_square

DIFFUSION = ("midjourney", "sdv14", "sdv15", "adm", "glide", "wukong", "vqdm")


@pytest.fixture(scope="module")
def demo_spectra(demo_tree: Path) -> dict:
    return {r.name: r for r in compute_spectra(demo_tree, per_generator=8, size=64, split="val")}


def test_gan_residual_spectrum_has_periodic_peaks_diffusion_does_not(demo_spectra):
    gan = demo_spectra["biggan"].peak_score
    for name in DIFFUSION + ("real",):
        assert gan > 5 * demo_spectra[name].peak_score, (name, gan, demo_spectra[name].peak_score)
    assert gan > 10


def test_peak_score_on_a_synthetic_checkerboard():
    rng = np.random.default_rng(0)
    noise = rng.integers(100, 156, (6, 3, 32, 32), dtype=np.uint8)
    grid = noise.copy()
    grid[..., 1::2, 1::2] += 12  # a fixed-phase period-2 pattern in every image
    assert periodic_peak_score(average_spectrum(grid)) > 10 * periodic_peak_score(average_spectrum(noise))
    assert periodic_frequencies(32, 32, 2) == [(0, 16), (16, 0), (16, 16)]


def test_spectra_command_writes_npz_png_json(demo_tree, tmp_path, capsys):
    out = tmp_path / "spectra"
    assert spectra_command(str(demo_tree), str(out), per_generator=3, size=32, split="val") == 0
    with np.load(out / "spectra.npz") as npz:
        assert set(npz.files) == set(GENERATOR_NAMES) | {"real"}
        assert npz["sdv14"].shape == (3, 32, 32) and npz["sdv14"].dtype == np.float32
        assert np.isfinite(npz["real"]).all()
    with Image.open(out / "spectra.png") as png:
        assert png.format == "PNG" and png.width > 800 and png.height > 500
    info = json.loads((out / "spectra.json").read_text())
    assert info["groups"]["real"]["count"] == 3 and info["groups"]["biggan"]["split"] == "val"
    assert not list(out.glob(".*"))  # no temp files left behind
    assert "BigGAN" in capsys.readouterr().out


def test_records_give_the_same_spectra_as_the_tree(demo_tree, make_records, tmp_path):
    records = make_records("dali")
    from_tree = compute_spectra(demo_tree, per_generator=3, size=32, split="val")
    from_records = compute_spectra(records, per_generator=3, size=32, split="val")
    assert [r.name for r in from_tree] == [r.name for r in from_records]
    for a, b in zip(from_tree, from_records, strict=True):
        np.testing.assert_allclose(a.spectrum, b.spectrum, rtol=1e-6, atol=1e-6)


def test_missing_split_falls_back_and_unreadable_images_are_skipped(demo_tree, tmp_path):
    subset = next(p for p in demo_tree.rglob("imagenet_ai_0419_biggan"))
    tree = tmp_path / "tree"
    shutil.copytree(subset, tree / "BigGAN" / subset.name)
    fakes = sorted((tree / "BigGAN" / subset.name / "val" / "ai").iterdir())
    fakes[0].write_bytes(b"\x89PNG\r\n\x1a\n not really")
    groups = collect_groups(tree, per_group=100, split="test")
    assert {g.name: g.split for g in groups} == {"real": "train", "biggan": "train"}
    results = {r.name: r for r in compute_spectra(tree, per_generator=100, size=32, split="val")}
    assert results["biggan"].skipped == 1 and results["biggan"].count == len(fakes) - 1


def test_fit_square_crops_and_upscales():
    image = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
    np.testing.assert_array_equal(fit_square(image, 20), image[10:30, 20:40].transpose(2, 0, 1))
    assert fit_square(image, 50).shape == (3, 50, 50)


def test_bad_source_is_one_clear_error(tmp_path):
    with pytest.raises(GenImageError, match="no such"):
        compute_spectra(tmp_path / "missing")
    with pytest.raises(GenImageError):
        spectra_command(str(tmp_path), str(tmp_path / "out"), per_generator=1, size=32)
