"""`bench spectral` runs both paths on one batch and reports each feature beside its numpy baseline."""

from __future__ import annotations

import json

import pytest

from genimage_fast.bench.spectral import run_spectral_bench


def test_bench_spectral_reports_every_feature_with_a_ratio(tmp_path, capsys):
    path = tmp_path / "bench.json"
    payload = run_spectral_bench(n=2, size=32, iters=1, device="cpu", json_path=str(path))
    assert json.loads(path.read_text()) == json.loads(json.dumps(payload))
    names = {r["name"] for r in payload["results"]}
    for feature in ("residual", "log-magnitude", "normalize", "radial", "accumulate", "log_spectrum", "non-fft total"):
        assert {f"{feature}/numba", f"{feature}/numpy"} <= names
    assert {"fft/scipy-rfft2", "fft/numpy-fft2"} <= names
    fast = [r for r in payload["results"] if not r["baseline"]]
    assert all(r["ratio_to_baseline"] > 0 and r["seconds"] > 0 for r in fast)
    assert "non-fft total/numba" in capsys.readouterr().out


@pytest.mark.heavy
def test_numba_is_at_least_3x_numpy_on_the_non_fft_work():
    payload = run_spectral_bench(n=16, size=128, iters=3, device="cpu")
    ratios = {r["name"]: r["ratio_to_baseline"] for r in payload["results"]}
    assert ratios["non-fft total/numba"] >= 3.0, ratios
