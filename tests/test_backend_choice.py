"""Which loader backend ran is never silent (issue #15 item 8): `auto` logs once why it skipped a
native backend, and the chosen backend is recorded in run.json and summary.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from genimage_fast.engine.train import train
from genimage_fast.loaders import base
from genimage_fast.loaders.base import LOADERS, choose_backend

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def test_auto_logs_once_why_it_skipped_the_native_backend(monkeypatch, caplog) -> None:
    dali = LOADERS.get("dali")
    monkeypatch.setattr(dali, "missing", staticmethod(lambda: "nvidia-dali does not import (ImportError: libcuda)"))
    monkeypatch.setattr(base, "_SKIPPED", set())
    with caplog.at_level(logging.WARNING, logger="genimage_fast.loaders.base"):
        assert choose_backend("auto", "dali") == "cpu"
        assert choose_backend("auto", "dali") == "cpu"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "skipping the dali loader" in lines[0] and "ImportError: libcuda" in lines[0]


def test_auto_picks_an_importable_native_backend_without_a_warning(monkeypatch, caplog) -> None:
    dali = LOADERS.get("dali")
    monkeypatch.setattr(dali, "missing", staticmethod(lambda: None))
    with caplog.at_level(logging.WARNING, logger="genimage_fast.loaders.base"):
        assert choose_backend("auto", "dali") == "dali"
    assert not caplog.records


def test_run_json_and_summary_record_the_backend(make_records, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "run"
    summary = train(DEMO, make_records("dali"), out=run,
                    overrides=["data.image_size=32", "data.num_workers=0", "train.batch_size=8", "train.max_steps=1",
                               "train.device=cpu", "train.val_every=0", "data.backend=cpu"])
    assert summary["backend"] == "cpu"
    assert json.loads((run / "summary.json").read_text())["backend"] == "cpu"
    info = json.loads((run / "run.json").read_text())
    assert info["backend"] == "cpu" and info["val_backend"] == "cpu"


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
