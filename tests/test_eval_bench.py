"""`bench eval` runs end to end on tiny settings: source vs crop over the same run, split and specs."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genimage_fast.cli import main
from genimage_fast.config import config_from_dict, config_to_dict
from genimage_fast.records import open_records


def test_bench_eval_source_vs_crop(make_records, tmp_path: Path, capsys) -> None:
    from genimage_fast.models import create_model

    records = make_records("dali")
    cfg = config_from_dict({"recipe": "demo", "model": {"name": "demo_cnn"},
                            "data": {"image_size": 32, "backend": "cpu", "num_workers": 0},
                            "train": {"precision": "fp32", "device": "cpu"}})
    torch.save({"model": create_model("demo_cnn").state_dict(), "config": config_to_dict(cfg)}, tmp_path / "m.pt")
    out = tmp_path / "bench.json"
    assert main(["bench", "eval", str(tmp_path / "m.pt"), "--data", str(records), "--degrade", "none,blur:3",
                 "--batch-size", "32", "--json", str(out), "--device", "cpu"]) == 0
    payload = json.loads(out.read_text())
    rows = {r["name"]: r for r in payload["results"]}
    n = len(open_records(records).split("val"))
    assert set(rows) == {"eval/crop", "eval/source"}
    assert rows["eval/crop"]["baseline"] and rows["eval/crop"]["ratio_to_baseline"] == 1
    assert rows["eval/source"]["images"] == rows["eval/crop"]["images"] == 2 * n  # images x specs
    assert rows["eval/source"]["images_per_second"] > 0
    assert payload["settings"]["specs"] == ["none", "blur:3"] and payload["settings"]["decoder"] == "full"
    assert "eval/source" in capsys.readouterr().out
    assert main(["bench", "eval", str(tmp_path / "m.pt"), "--data", str(records), "--degrade", "blur:x"]) == 2
