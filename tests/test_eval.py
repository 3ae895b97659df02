"""Evaluation: metrics against independent references, models with known outputs, written files, errors."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from genimage_fast.cli import main
from genimage_fast.config import config_from_dict, config_to_dict
from genimage_fast.engine.evaluate import (
    Predictions,
    average_precision,
    degrade_batch,
    evaluate,
    results_markdown,
    summarize,
)
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, GENERATORS, generator_name

SPECS = ["none", "jpeg:30", "lr:16"]


def reference_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision by its definition: walk the thresholds from the highest score down."""
    positives, ap, last_recall = labels.sum(), 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        called = scores >= threshold
        true_pos = (called & (labels == 1)).sum()
        recall = true_pos / positives
        ap += (recall - last_recall) * true_pos / called.sum()
        last_recall = recall
    return float(ap)


def test_average_precision_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        labels[:2] = [0, 1]
        scores = rng.integers(0, 8, 40) / 8.0  # many ties
        assert average_precision(labels, scores) == pytest.approx(reference_ap(labels, scores))
    # without ties AP is the mean, over the positives, of the precision at each positive's rank
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert average_precision(labels, scores) == pytest.approx(np.mean([1 / 1, 2 / 3, 3 / 4, 4 / 7]))
    assert average_precision(np.array([0, 1]), np.array([0.1, 0.9])) == 1.0
    assert average_precision(np.array([1, 1]), np.array([0.1, 0.9])) is None  # one class only: undefined


def test_summarize_known_outputs() -> None:
    # sdv14: 2 reals (1 right), 2 fakes (both right); adm: 1 real (right), 3 fakes (1 right)
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1])
    gens = np.array([1, 1, 1, 1, 3, 3, 3, 3])
    scores = np.array([0.1, 0.7, 0.5, 0.9, 0.2, 0.8, 0.3, 0.4], dtype=np.float32)
    out = summarize(Predictions(np.arange(8), labels, gens, {"none": scores}))
    assert out["accuracy"]["none"] == {"sdv14": 0.75, "adm": 0.5, "mean": 0.625}
    assert out["real_accuracy"]["none"] == {"sdv14": 0.5, "adm": 1.0, "mean": 0.75}
    assert out["fake_accuracy"]["none"] == {"sdv14": 1.0, "adm": 1 / 3, "mean": pytest.approx(2 / 3)}
    assert out["counts"] == {"sdv14": {"real": 2, "fake": 2}, "adm": {"real": 1, "fake": 3}}
    ap = out["average_precision"]["none"]
    assert ap["sdv14"] == pytest.approx(reference_ap(labels[:4], scores[:4]))
    assert ap["adm"] == pytest.approx(reference_ap(labels[4:], scores[4:]))


def test_results_markdown_layout() -> None:
    acc = {g: 0.5 + i / 20 for i, g in enumerate(GENERATOR_NAMES)}
    acc["mean"] = float(np.mean(list(acc.values())))
    table = {"none": acc, "jpeg:30": acc}
    results = {"checkpoint": "c.pt", "data": "r", "accuracy": table, "real_accuracy": table,
               "fake_accuracy": table, "average_precision": table, "recipe": "resnet50", "model": "resnet50",
               "train_generators": ["sdv14"], "counts": {}}
    md = results_markdown(results)
    titles = " | ".join(g.title for g in GENERATORS)
    assert f"| Degradation | {titles} | Avg Acc.(%) |" in md
    assert "| None | 50.0 | 55.0 | 60.0 | 65.0 | 70.0 | 75.0 | 80.0 | 85.0 | 67.5 |" in md
    assert "| JPEG (q=30) | 50.0 |" in md
    assert "| Method | JPEG (q=30) | Avg Acc(%) |\n|:---|---:|---:|\n| ResNet-50 | 55.0 | 55.0 |" in md  # SD V1.4


# ----------------------------------------------------------------------------------------------
# Whole evaluations on the tiny demo records


def _checkpoint(path: Path, bias: tuple[float, float] | None, seed: int = 0) -> Path:
    """A demo_cnn checkpoint; with `bias` its head ignores the image (known constant outputs)."""
    from genimage_fast.models import create_model

    cfg = config_from_dict({"recipe": "demo", "model": {"name": "demo_cnn"},
                            "data": {"image_size": 32, "backend": "cpu", "num_workers": 0},
                            "train": {"precision": "fp32", "device": "cpu"}})
    torch.manual_seed(seed)
    model = create_model("demo_cnn")
    if bias is not None:
        with torch.no_grad():
            model.fc.weight.zero_()
            model.fc.bias.copy_(torch.tensor(bias))
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": config_to_dict(cfg)}, path / "last.pt")
    return path / "last.pt"


def _subset_counts(records: Path) -> dict[str, dict[int, int]]:
    from genimage_fast.records import open_records

    meta = open_records(records).split("val").meta
    counts: dict[str, dict[int, int]] = defaultdict(lambda: {0: 0, 1: 0})
    for gen, label in zip(meta["generator"], meta["label"], strict=True):
        counts[generator_name(int(gen))][int(label)] += 1
    return counts


@pytest.mark.parametrize("fake", [True, False])
def test_constant_model_gives_known_tables(make_records, tmp_path: Path, fake: bool) -> None:
    records = make_records("dali")
    ckpt = _checkpoint(tmp_path / "run" / "checkpoints", (-5.0, 5.0) if fake else (5.0, -5.0))
    results = evaluate(tmp_path / "run", records, degrade=SPECS, out=tmp_path / "eval", batch_size=16)
    counts = _subset_counts(records)
    assert results["checkpoint"] == str(ckpt) and results["train_generators"] == []
    for spec in SPECS:
        for name, c in counts.items():
            share_fake = c[1] / (c[0] + c[1])
            assert results["accuracy"][spec][name] == pytest.approx(share_fake if fake else 1 - share_fake)
            assert results["real_accuracy"][spec][name] == (0.0 if fake else 1.0)
            assert results["fake_accuracy"][spec][name] == (1.0 if fake else 0.0)
            # every score tied: precision is the share of fakes at recall 1
            assert results["average_precision"][spec][name] == pytest.approx(share_fake)
        assert results["counts"] == {n: {"real": c[0], "fake": c[1]} for n, c in counts.items()}
    on_disk = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert on_disk["accuracy"] == results["accuracy"]
    assert (tmp_path / "eval" / "results.md").read_text().startswith("# Evaluation of demo")


def test_predictions_csv_recomputes_results(make_records, tmp_path: Path) -> None:
    from genimage_fast.records import open_records

    records = make_records("dali")
    ckpt = _checkpoint(tmp_path / "ckpt", None, seed=3)
    assert main(["eval", str(ckpt), "--data", str(records), "--degrade", ",".join(SPECS),
                 "--out", str(tmp_path / "eval"), "--save-predictions", "--batch-size", "16"]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "generator", "label", "spec", "score", "pred"]
    meta = open_records(records).split("val").meta
    assert len(rows) == len(meta["path"]) * len(SPECS)
    assert {r["path"] for r in rows} == set(meta["path"])
    right: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in rows:
        assert int(r["pred"]) == int(float(r["score"]) >= 0.5)
        right[r["spec"], r["generator"]].append(int(r["pred"]) == int(r["label"]))
    for spec in SPECS:
        per_gen = {g: float(np.mean(right[spec, g])) for (s, g) in right if s == spec}
        assert results["accuracy"][spec] == pytest.approx({**per_gen, "mean": np.mean(list(per_gen.values()))})


def test_lowres_comes_back_to_model_size() -> None:
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x[1] = 77
    out = degrade_batch(x, "lr:16", 32)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out[1] == 77).all()  # a flat image survives down- and up-sampling
    assert not torch.equal(out[0], x[0])
    assert degrade_batch(x, "none", 32) is x
    assert degrade_batch(x, "lr:32", 32) is x and degrade_batch(x, "lr:64", 32) is x  # no bottleneck below 32


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GenImageError, match="not found"):
        evaluate(tmp_path / "missing", tmp_path)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(GenImageError, match="no checkpoint in run directory"):
        evaluate(tmp_path / "empty_run", tmp_path)
    torch.save({"model": {}}, tmp_path / "no_config.pt")
    with pytest.raises(GenImageError, match="has no 'config'"):
        evaluate(tmp_path / "no_config.pt", tmp_path, degrade="none")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GenImageError, match="cannot read checkpoint"):
        evaluate(tmp_path / "junk.pt", tmp_path, degrade="none")
    assert main(["eval", str(tmp_path / "missing"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err


def test_unknown_spec_is_one_clear_error(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "run", (0.0, 0.0))
    for spec in ("jpeg:300", "sharpen:2", "lr:0"):
        with pytest.raises(GenImageError, match="bad degradation spec"):
            evaluate(ckpt, tmp_path, degrade=f"none,{spec}")
