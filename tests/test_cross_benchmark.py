"""eval and report with other benchmarks' generators: a GenImage-trained model tested on a
UniversalFakeDetect-layout tree (`<generator>/{0_real,1_fake}`), then a cross-benchmark table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genimage_fast.cli import main
from genimage_fast.config import config_to_dict, load_config
from genimage_fast.models import create_model
from genimage_fast.records import convert
from tests.test_report import FAITHFUL, _results, _row, _write

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for gen in ("guided", "dalle", "ADM"):
        for label in ("0_real", "1_fake"):
            for i in range(3):
                path = root / gen / label / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)


def _run(tmp: Path) -> Path:
    cfg = load_config(RECIPES / "demo.yaml", ["data.generators=sdv14"])
    torch.manual_seed(0)
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    ckpt = tmp / "run" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": config_to_dict(cfg), "epoch": 1, "step": 1}, ckpt)
    return tmp / "run"


def test_eval_names_other_generators_and_report_tables_them(tmp_path, capsys):
    _tree(tmp_path / "ufd")
    convert(tmp_path / "ufd", tmp_path / "ufd_records", fmt="dali", progress=False)
    run = _run(tmp_path)
    assert main(["eval", str(run), "--data", str(tmp_path / "ufd_records"), "--split", "test", "--device", "cpu",
                 "--backend", "cpu", "--out", str(tmp_path / "ev"), "--save-predictions"]) == 0
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(results["accuracy"]["none"]) == {"guided", "dalle", "adm", "mean"}  # ADM keeps GenImage's name
    assert results["counts"] == {"adm": {"real": 3, "fake": 3}, "dalle": {"real": 3, "fake": 3},
                                 "guided": {"real": 3, "fake": 3}}
    assert results["benchmark"] == "ufd_records"
    md = (tmp_path / "ev" / "results.md").read_text()
    assert "guided" in md and "dalle" in md and "Midjourney" not in md
    rows = (tmp_path / "ev" / "predictions.csv").read_text().splitlines()
    assert {r.split(",")[1] for r in rows[1:]} == {"guided", "dalle", "adm"}

    genimage = _write(tmp_path, "gi", _results({"none": _row({"sdv14": 0.9, "adm": 0.6})}, ["sdv14"],
                                               recipe="demo", protocol=FAITHFUL))
    capsys.readouterr()
    assert main(["report", str(genimage), str(tmp_path / "ev" / "results.json"), "--out", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    (label, row), = report["cross_benchmark"]["ufd_records"].items()
    assert "trained on SD V1.4" in label
    assert set(row) == {"guided", "dalle", "adm", "avg"}
    assert row["avg"] == results["accuracy"]["none"]["mean"]
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "tested on `ufd_records`" in text
    assert "83.4" in text and "Grommelt" in text  # reference numbers beyond the paper are cited
    assert "demo" in json.dumps(report["table3"])  # the GenImage run still fills the GenImage tables
