"""`bench loader` runs end to end on tiny settings: every backend beside a baseline over the same
pixels, the decode ceiling, and each store against `original` of its format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from genimage_fast.bench.loader import bench_loader_command, write_pixel_tree
from genimage_fast.errors import GenImageError
from genimage_fast.loaders import LOADERS
from genimage_fast.records import open_records
from tests.conftest import requires_backend


@requires_backend("dali")  # benches the dali loader beside cpu
def test_bench_loader_compares_equal_pixels(make_records, demo_tree, tmp_path, capsys):
    out = tmp_path / "loader.json"
    sets = [str(make_records("dali")), str(make_records("dali", "lossless")), str(make_records("dali", "raw", 64))]
    code = bench_loader_command(sets, tree=str(demo_tree), backends="all", batch_size=4, image_size=32,
                                num_workers=0, batches=2, split="val", json_path=str(out), device="cpu")
    assert code == 0
    payload = json.loads(out.read_text())
    rows = {(r["extra"]["group"], r["name"]): r for r in payload["results"]}
    groups = {"dali/original", "dali/lossless", "dali/raw/max-side-64"}
    assert {g for g, _ in rows} == groups
    for group in groups:
        names = {n for g, n in rows if g == group}
        assert {"loader/cpu", "loader/dali", "decode-ceiling/all 1 thread(s)",
                "decode-ceiling/fakes 1 thread(s)"} <= names
        base = [r for (g, _), r in rows.items() if g == group and r["baseline"]]
        assert len(base) == 1 and base[0]["ratio_to_baseline"] == 1
        assert base[0]["extra"]["tree"] == ("records' pixels" if "max-side" in group else "original")
        assert rows[group, "loader/cpu"]["extra"]["share_of_decode_ceiling"] > 0
    assert all(r["images"] == 8 for (_, n), r in rows.items() if n.startswith("loader/"))
    assert rows["dali/lossless", "loader/dali"]["extra"]["ratio_to_original_records"] > 0
    assert rows["dali/lossless", "decode-ceiling/fakes 1 thread(s)"]["extra"]["ratio_to_original_records"] > 0
    assert "ratio_to_original_records" not in rows["dali/raw/max-side-64", "loader/dali"]["extra"]  # other pixels
    text = capsys.readouterr().out
    assert "x the torchvision baseline over the original tree" in text
    assert "dali/lossless vs dali/original, same pixels: loader/dali" in text


def test_bench_loader_all_skips_a_missing_backend_and_says_why(make_records, demo_tree, tmp_path, capsys,
                                                               monkeypatch):
    """--backends all on a box without DALI (simulated here where it is installed): cpu is benched, and
    the output and JSON name the skipped backend with its reason."""
    dali = LOADERS.get("dali")
    why = dali.missing() or "nvidia-dali does not import (simulated)"
    monkeypatch.setattr(dali, "missing", staticmethod(lambda: why))
    out = tmp_path / "loader.json"
    code = bench_loader_command(str(make_records("dali")), tree=str(demo_tree), backends="all", batch_size=4,
                                image_size=32, num_workers=0, batches=1, split="val", json_path=str(out),
                                device="cpu")
    assert code == 0
    payload = json.loads(out.read_text())
    names = {r["name"] for r in payload["results"]}
    assert "loader/cpu" in names and "loader/dali" not in names
    assert payload["settings"]["skipped_backends"] == {"dali": why}
    assert f"skipped backend dali: {why}" in capsys.readouterr().out
    with pytest.raises(GenImageError, match="the dali loader is not available here"):  # asked for by name
        bench_loader_command(str(make_records("dali")), tree=str(demo_tree), backends="dali", batch_size=4,
                             image_size=32, num_workers=0, batches=1, split="val", device="cpu")


def test_pixel_tree_holds_the_records_pixels(make_records, tmp_path):
    rs = open_records(make_records("dali", "raw", 64))
    paths = write_pixel_tree(rs, "val", tmp_path)
    part = rs.split("val")
    assert len(paths) == len(part)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert max(pixels.shape[:2]) <= 64 and np.array_equal(pixels, part.read_image(i))


def test_bench_loader_needs_the_tree(make_records, tmp_path):
    with pytest.raises(GenImageError, match="--tree"):
        bench_loader_command(str(make_records("dali")), tree=str(tmp_path), batches=1, split="val", device="cpu")
