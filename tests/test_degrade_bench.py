"""`genimage-fast bench degrade` on a tiny batch: every row measured, JSON written, bad options refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genimage_fast.bench.degrade import bench_degrade_command, photo_batch
from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from tests.conftest import requires_cuda


def test_bench_degrade_writes_rows_and_ratios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "degrade.json"
    code = main(["bench", "degrade", "--batch-size", "2", "--image-size", "32", "--ops", "jpeg,blur,blur_u8,lowres",
                 "--backends", "cpu,torch", "--iters", "1", "--device", "cpu", "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    names = [r["name"] for r in payload["results"]]
    for op in ("jpeg", "blur", "blur_u8", "lowres"):
        assert f"{op}/baseline-per-image" in names and f"{op}/cpu" in names and f"{op}/torch" in names
    assert all(r["images"] == 2 and r["seconds"] > 0 for r in payload["results"])
    assert all(r["ratio_to_baseline"] is not None for r in payload["results"])
    assert payload["settings"]["image_size"] == 32
    assert "jpeg/torch" in capsys.readouterr().out


def test_photo_batch_is_real_and_deterministic() -> None:
    a, b = photo_batch(3, 64), photo_batch(3, 64)
    assert a.shape == (3, 64, 64, 3) and (a == b).all()
    assert a.std() > 10  # photo content, not a constant


def test_bench_degrade_rejects_bad_options() -> None:
    with pytest.raises(GenImageError):
        bench_degrade_command(batch_size=1, image_size=16, ops="sharpen", backends="cpu", iters=1, device="cpu")
    with pytest.raises(GenImageError):
        bench_degrade_command(batch_size=1, image_size=16, ops="jpeg", backends="triton", iters=1, device="cpu")
    with pytest.raises(GenImageError):
        bench_degrade_command(batch_size=1, image_size=16, ops="jpeg", backends="gpu", iters=1, device="cpu")


@requires_cuda
def test_bench_degrade_on_cuda_has_kernel_and_api_rows(tmp_path: Path) -> None:
    out = tmp_path / "degrade.json"
    assert bench_degrade_command(batch_size=8, image_size=64, ops="jpeg,blur", backends="triton,torch", iters=2,
                                 device="cuda", json_path=str(out)) == 0
    payload = json.loads(out.read_text())
    rows = {r["name"]: r for r in payload["results"]}
    for name in ("jpeg/triton", "jpeg/triton-kernel", "jpeg/torch", "blur/triton", "blur/triton-kernel"):
        assert rows[name]["images"] >= 256 * 20 and rows[name]["extra"]["timer"] == "cuda-events", name
    assert payload["settings"]["batch_size"] == 256 and payload["settings"]["requested_batch_size"] == 8
