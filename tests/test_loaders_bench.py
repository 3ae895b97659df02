"""`bench loader` runs end to end on tiny settings and reports every backend beside the baseline."""

from __future__ import annotations

import json

import pytest

from genimage_fast.bench.loader import bench_loader_command
from genimage_fast.errors import GenImageError


def test_bench_loader_reports_backends_and_baseline(make_records, demo_tree, tmp_path, capsys):
    out = tmp_path / "loader.json"
    code = bench_loader_command(str(make_records("dali")), tree=str(demo_tree), backends="all", batch_size=4,
                                image_size=32, num_workers=0, batches=2, split="val", json_path=str(out),
                                device="cpu")
    assert code == 0
    payload = json.loads(out.read_text())
    rows = {r["name"]: r for r in payload["results"]}
    assert set(rows) == {"loader/torchvision-folder", "loader/cpu", "loader/dali"}
    assert rows["loader/torchvision-folder"]["baseline"] and rows["loader/torchvision-folder"]["ratio_to_baseline"] == 1
    assert all(r["images"] == 8 and r["images_per_second"] > 0 for r in rows.values())
    assert payload["settings"]["store"] == "original" and payload["settings"]["split"] == "val"
    assert "x the torchvision baseline" in capsys.readouterr().out


def test_bench_loader_needs_the_tree(make_records, tmp_path):
    with pytest.raises(GenImageError, match="--tree"):
        bench_loader_command(str(make_records("dali")), tree=str(tmp_path), batches=1, split="val", device="cpu")
