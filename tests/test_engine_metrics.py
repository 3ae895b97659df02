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


def test_summary_throughput_leaves_out_the_first_window(monkeypatch) -> None:
    """DESIGN §4.5: images_per_second at steady state, without the first (compiling) log window."""
    import torch

    from genimage_fast.engine import train as train_module

    clock = iter([0.0, 10.0, 10.0, 11.0, 11.0, 12.0, 12.0])  # window 1: 10 s (compile), then 1 s each
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: next(clock))
    window = train_module._Window(torch.device("cpu"))
    for _ in range(3):
        window.add(torch.tensor(1.0), 100)
        window.close()
    assert window.overall_images_per_second() == 100.0  # not 300 / 12
    single = train_module._Window.__new__(train_module._Window)
    single.total_images, single.total_seconds, single.first = 50, 2.0, (50, 2.0)
    assert single.overall_images_per_second() == 25.0  # one window: that window
