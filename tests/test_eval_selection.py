"""Model selection without val: the class-balanced selection set carved from train, and a run that uses it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from genimage_fast.engine.selection import carve_selection
from genimage_fast.engine.train import train
from genimage_fast.errors import GenImageError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.image_size=32", "data.num_workers=0", "train.batch_size=8", "train.log_every=1", "train.device=cpu",
        "train.precision=fp32", "train.max_steps=2", "train.epochs=1"]


def test_carve_is_balanced_disjoint_and_seeded() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    gens = rng.integers(0, 8, 400)
    split = carve_selection(labels, gens, 0.2, seed=5)
    assert np.intersect1d(split.train, split.selection).size == 0
    assert np.array_equal(np.union1d(split.train, split.selection), np.arange(400))
    groups = Counter(zip(labels.tolist(), gens.tolist(), strict=True))
    held = Counter(zip(labels[split.selection].tolist(), gens[split.selection].tolist(), strict=True))
    for group, n in groups.items():  # every (label, generator) group gives round(0.2 n) of its members
        assert held[group] == round(0.2 * n), group
    again = carve_selection(labels, gens, 0.2, seed=5)
    assert np.array_equal(again.selection, split.selection)
    assert not np.array_equal(carve_selection(labels, gens, 0.2, seed=6).selection, split.selection)
    keep = np.flatnonzero(gens == 3)  # restricted to the training generators: nothing else is held out
    assert set(gens[carve_selection(labels, gens, 0.5, seed=0, keep=keep).selection]) == {3}
    for bad in (1.0, -0.1):
        with pytest.raises(GenImageError, match="selection_fraction"):
            carve_selection(labels, gens, bad, seed=0)


def test_train_selects_on_the_holdout_and_never_trains_on_it(make_records, tmp_path: Path, monkeypatch) -> None:
    from genimage_fast.engine import train as train_module
    from genimage_fast.records import open_records

    records = make_records("dali")
    seen: list[dict] = []
    real_build = train_module.Trainer.__init__

    def spy(self, *args, **kwargs):  # record what each loader was asked to yield
        real_build(self, *args, **kwargs)
        seen.append({"train": self.loader.planner.selected.copy(), "val": self.val_loader.planner.selected.copy(),
                     "val_split": self.val_loader.split_name})

    monkeypatch.setattr(train_module.Trainer, "__init__", spy)
    torch.set_num_threads(1)
    run = tmp_path / "run"
    summary = train(ROOT / "recipes" / "demo.yaml", records, out=run,
                    overrides=[*TINY, "data.selection_fraction=0.25"])
    meta = open_records(records).split("train").meta
    expected = carve_selection(meta["label"], meta["generator"], 0.25, seed=0)
    (loaders,) = seen
    assert loaders["val_split"] == "train"
    assert np.array_equal(loaders["val"], expected.selection)
    assert np.array_equal(loaders["train"], expected.train)
    assert summary["selection"] == {"set": "train-holdout", "fraction": 0.25, "seed": 0,
                                    "images": len(expected.selection)}
    assert summary["val_accuracy"] == {} and 0.0 <= summary["selection_accuracy"]["mean"] <= 1.0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("selection_accuracy" in r for r in lines) and not any("val_accuracy" in r for r in lines)
    assert (run / "checkpoints" / "best.pt").is_file()

    # fraction 0 (the default): the summary says honestly that val chose best.pt
    plain = train(ROOT / "recipes" / "demo.yaml", records, out=tmp_path / "plain", overrides=TINY)
    assert plain["selection"]["set"] == "val" and "optimistic" in plain["selection"]["note"]


def test_eval_scores_best_pt_of_a_selection_run_and_says_so(make_records, tmp_path: Path) -> None:
    from genimage_fast.engine.evaluate import evaluate

    records = make_records("dali")
    torch.set_num_threads(1)
    run = tmp_path / "run"
    train(ROOT / "recipes" / "demo.yaml", records, out=run, overrides=[*TINY, "data.selection_fraction=0.25"])
    results = evaluate(run, records, degrade="none", batch_size=32)
    assert Path(results["checkpoint"]).name == "best.pt"
    assert results["protocol"]["selection"] == "train-holdout" and results["split"] == "val"
    # a run that selected on val: eval keeps to last.pt; best.pt given by hand is recorded as val-selected
    plain = tmp_path / "plain"
    train(ROOT / "recipes" / "demo.yaml", records, out=plain, overrides=TINY)
    assert evaluate(plain, records, batch_size=32)["protocol"]["selection"] == "last"
    assert evaluate(plain / "checkpoints" / "best.pt", records, batch_size=32)["protocol"]["selection"] == "val"
