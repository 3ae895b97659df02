"""`make gpu-check` plumbing on the CPU: the dry run of every registered stage, time boxes, the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from genimage_fast.bench.gpucheck import runner
from genimage_fast.bench.gpucheck.runner import SCHEMA, Context, Stage


@pytest.fixture(scope="module")
def dry_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("gpucheck")
    t0 = time.monotonic()
    report = runner.run_check(out, dry=True, budget_s=300)
    report["_wall"] = time.monotonic() - t0
    return report, out


def test_dry_run_runs_every_stage_and_writes_the_report(dry_report: tuple[dict, Path]) -> None:
    report, out = dry_report
    assert report["schema"] == SCHEMA and report["dry"] is True
    assert all(state in ("ok", "absent") for state in report["modules"].values()), report["modules"]
    names = [s["name"] for s in report["stages"]]
    assert names == [s.name for s in runner.ordered_stages()]
    assert {"environment", "cuda_tests"} <= set(names)
    bad = {s["name"]: s.get("error") for s in report["stages"] if s["status"] != "ok"}
    assert not bad, bad
    on_disk = json.loads((out / runner.JSON_NAME).read_text())
    assert [s["name"] for s in on_disk["stages"]] == names and "finished" in on_disk
    md = (out / runner.MD_NAME).read_text()
    assert all(f"| {n} |" in md for n in names)
    assert report["_wall"] < 60  # the bound is < 30 s on an idle 2-core box


def test_device_eval_dry_run_forces_the_device_path_then_restores_it(dry_report: tuple[dict, Path]) -> None:
    """The dry run takes the device path on the CPU (patched in-process), so the stage must put the
    loaders' own functions back for the stages and tests after it."""
    from genimage_fast.loaders import device_eval, gpu_decode

    report, _ = dry_report
    (rec,) = [s for s in report["stages"] if s["name"] == "device_eval"]
    res = rec["result"]
    assert res["fidelity_ok"] is True and res["fidelity_failed"] == [], res["fidelity_failed"]
    fidelity = [r for r in res["rows"] if r["part"] == "fidelity"]
    assert {r["kind"] for r in fidelity} == {"real", "fake"} and all(r["ok"] for r in fidelity)
    speed = {(r["path"], r["transform"]): r for r in res["rows"] if r["part"] == "speed"}
    for transform in ("cnndetection", "resize_centre"):
        assert speed[("device", transform)]["pipeline_on"] == "device"
        assert speed[("host", transform)]["pipeline_on"] == "host"
        assert speed[("device", transform)]["img_per_s"] > 0 and "device_vs_host" in speed[("device", transform)]
    for fn in (device_eval.applies, gpu_decode.nvjpeg_missing, gpu_decode.nvjpeg_decoder):
        assert fn.__module__.startswith("genimage_fast.loaders."), fn


def test_patched_restores_on_error() -> None:
    from types import SimpleNamespace

    from genimage_fast.bench.gpucheck.source_eval import _patched

    target = SimpleNamespace(a=1, b=2)
    with pytest.raises(RuntimeError), _patched([(target, "a", 10), (target, "b", 20)]):
        assert (target.a, target.b) == (10, 20)
        raise RuntimeError("stage failed midway")
    assert (target.a, target.b) == (1, 2)


def test_a_stage_that_raises_is_recorded_not_fatal(tmp_path: Path) -> None:
    def boom(ctx: Context) -> dict:
        raise RuntimeError("kernel exploded")

    rec = runner._call(Stage("boom", boom, 99, 10, 1, "test"), Context(torch.device("cpu"), True, tmp_path, 0.0))
    assert rec["status"] == "failed" and "kernel exploded" in rec["error"]


def test_stages_that_no_longer_fit_are_skipped(tmp_path: Path) -> None:
    report = runner.run_check(tmp_path, dry=False, budget_s=20.0, device="cpu", only=["cuda_tests"], isolate=False)
    (rec,) = report["stages"]  # needs 40 s of the 20 left
    assert rec["status"] == "skipped" and "time short" in rec["reason"] and rec["seconds"] == 0


def test_isolated_stage_runs_in_a_child_process(tmp_path: Path) -> None:
    report = runner.run_check(tmp_path, dry=True, budget_s=60, only=["environment"], isolate=True)
    (rec,) = report["stages"]
    assert rec["status"] == "ok", rec
    assert rec["result"]["device"] == "cpu"


def test_unknown_stage_is_a_clear_error(tmp_path: Path) -> None:
    from genimage_fast.errors import GenImageError

    with pytest.raises(GenImageError, match="unknown gpu-check stage 'kernal'"):
        runner.run_check(tmp_path, dry=True, only=["kernal"])


def test_markdown_renders_rows_as_a_table() -> None:
    report = {"dry": True, "started": "t", "elapsed_s": 1.0, "budget_s": 2.0, "environment": {"device": "cpu"},
              "stages": [{"name": "s", "owner": "o", "status": "ok", "seconds": 0.5,
                          "result": {"note": 1, "rows": [{"a": 1, "b": 2}, {"a": 3, "c": 4}]}}]}
    md = runner.render_markdown(report)
    assert "| a | b | c |" in md and "| 3 |  | 4 |" in md and "- note: 1" in md
