"""accuracy_by_generator against a plain per-subset count, and the metrics log."""

from __future__ import annotations

import json

import numpy as np
import torch

from genimage_fast.engine.metrics import MetricsLog, accuracy_by_generator, read_metrics
from genimage_fast.generators import generator_name


def test_accuracy_by_generator_matches_plain_counting() -> None:
    rng = np.random.default_rng(0)
    n = 200
    scores = rng.random(n)
    labels = rng.integers(0, 2, n)
    gens = rng.choice([0, 3, 7, -1], n)
    result = accuracy_by_generator(torch.from_numpy(scores).to(torch.bfloat16), torch.from_numpy(labels),
                                   torch.from_numpy(gens))
    bf = torch.from_numpy(scores).to(torch.bfloat16).float().numpy()
    expected = {}
    for g in (-1, 0, 3, 7):
        idx = [i for i in range(n) if gens[i] == g]
        expected[generator_name(g)] = sum((bf[i] >= 0.5) == bool(labels[i]) for i in idx) / len(idx)
    assert set(result) == set(expected) | {"mean"}
    for name, acc in expected.items():
        assert abs(result[name] - acc) < 1e-12
    assert abs(result["mean"] - sum(expected.values()) / 4) < 1e-12
    assert accuracy_by_generator([], [], []) == {}


def test_threshold_is_inclusive_and_per_subset() -> None:
    result = accuracy_by_generator([0.5, 0.49, 0.9, 0.1], [1, 0, 0, 0], [1, 1, 2, 2])
    assert result == {"sdv14": 1.0, "sdv15": 0.5, "mean": 0.75}


def test_metrics_log_appends_and_truncates(tmp_path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 6):
        log.write({"step": step, "loss": float("nan") if step == 5 else step * 0.1})
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["loss"] == "nan"
    log.truncate_after(3)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    MetricsLog(tmp_path / "off.jsonl", enabled=False).write({"step": 1})
    assert not (tmp_path / "off.jsonl").exists()
