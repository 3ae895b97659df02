"""The protocol runner: its file, its errors, and a tiny end-to-end run (convert → train → eval → report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES
from genimage_fast.reports.paper_numbers import METHOD_TITLES
from genimage_fast.reports.protocol import Protocol, load_protocol, resolve_recipe, run_protocol

ROOT = Path(__file__).resolve().parents[1]
TASK1_TASK2 = ROOT / "recipes" / "protocols" / "task1_task2.yaml"
TINY = ["train.epochs=2", "train.max_steps=2", "train.batch_size=8", "train.val_every=0",
        "data.image_size=32", "data.num_workers=0", "train.log_every=1"]


def test_the_shipped_protocol_is_the_papers() -> None:
    protocol = load_protocol(TASK1_TASK2)
    assert protocol.recipes == list(METHOD_TITLES)  # the seven detectors, paper order
    assert protocol.train_generators == ["sdv14"]
    assert protocol.degrade == ["none", "lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5"]
    for name in protocol.recipes:
        assert resolve_recipe(name).is_file()
    # flags override the file; 'all' is the 8x8 matrix
    flagged = load_protocol(TASK1_TASK2, recipes="demo", train_generators="all", degrade="none")
    assert (flagged.recipes, flagged.train_generators, flagged.degrade) == (["demo"], list(GENERATOR_NAMES), ["none"])
    assert load_protocol(None) == Protocol()


def test_protocol_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipes: [resnet50]\ntrain_generator: [sdv14]\n")
    with pytest.raises(GenImageError, match="unknown protocol key 'train_generator'.*train_generators"):
        load_protocol(bad)
    with pytest.raises(GenImageError, match="unknown generator 'sdv4'"):
        load_protocol(None, train_generators="sdv4")
    with pytest.raises(GenImageError, match="unknown recipe 'resnet5'"):
        resolve_recipe("resnet5")
    with pytest.raises(GenImageError, match="protocol file not found"):
        load_protocol(tmp_path / "missing.yaml")
    # a bad spec fails before any conversion or training
    assert main(["protocol", str(tmp_path), "--out", str(tmp_path / "out"), "--degrade", "none,jpeg:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jpeg:0" in err
    assert not (tmp_path / "out" / "records").exists()
    with pytest.raises(GenImageError, match="unknown --degrade-at 'centre'"):
        run_protocol(tmp_path, tmp_path / "out", Protocol(degrade_at="centre"))
    assert main(["protocol", str(tmp_path), "--out", str(tmp_path / "out"), "--degrade-at", "centre"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown --degrade-at 'centre'" in err
    assert not (tmp_path / "out" / "records").exists()


def test_tiny_protocol_end_to_end(demo_tree: Path, tmp_path: Path) -> None:
    """One recipe x two training generators on the tiny demo tree (~15 s); a second call reuses everything."""
    protocol = load_protocol(None, recipes="demo", train_generators="sdv14,adm", degrade="none,jpeg:30,lr:16")
    protocol.set = TINY
    messages: list[str] = []
    data = run_protocol(demo_tree, tmp_path, protocol, progress=messages.append)
    for gen in ("sdv14", "adm"):
        run = tmp_path / "runs" / "demo" / gen
        results = json.loads((run / "results.json").read_text())
        assert results["train_generators"] == [gen] and results["degrade"] == ["none", "jpeg:30", "lr:16"]
        assert results["protocol"]["degrade_at"] == "source"  # the paper's Task 2: the test images degraded
        assert set(results["accuracy"]["none"]) == {*GENERATOR_NAMES, "mean"}  # tested on all eight
        assert data["table2"]["demo"][gen]["avg"] == pytest.approx(results["accuracy"]["none"]["mean"])
    assert list(data["table2"]["demo"]) == ["sdv14", "adm"]
    assert data["table5"]["sdv14"]["demo"]["jpeg:30"] is not None
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "figure3_demo.png").is_file()
    assert any(m.startswith("train demo on sdv14") for m in messages)

    again: list[str] = []
    run_protocol(demo_tree, tmp_path, protocol, progress=again.append)
    assert sum("done before" in m for m in again) == 4  # two trainings and two evals reused
    # an eval degraded elsewhere (here: results written before protocols were recorded) is redone
    run = tmp_path / "runs" / "demo" / "adm"
    results = json.loads((run / "results.json").read_text())
    del results["protocol"]
    (run / "results.json").write_text(json.dumps(results))
    third: list[str] = []
    run_protocol(demo_tree, tmp_path, protocol, progress=third.append)
    assert sum("done before" in m for m in third) == 3 and any(m.startswith("eval demo trained on adm") for m in third)
