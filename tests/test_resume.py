"""Exact resume (issue #15 items 1-3, 6): a run stopped at any step and resumed equals, bit for bit
(`==`, no tolerance), the run that never stopped: every logged line (loss, lr, epoch, validation)
and every tensor of the final model, for models that draw from the global RNG during training
(dropout in demo_cnn and GramNet's head, drop-path in Swin-T). CPU, one thread, 32 px, few steps.

Also: a resume whose geometry changed is refused with one line naming the key and both values, a
half-written metrics line is dropped with a warning, and ranks get distinct RNG streams.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from genimage_fast.engine.metrics import read_metrics
from genimage_fast.engine.signals import TrainingInterrupted
from genimage_fast.engine.train import train
from genimage_fast.errors import GenImageError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "demo.yaml"
TINY = ["data.image_size=32", "data.num_workers=0", "train.batch_size=8", "train.device=cpu",
        "train.precision=fp32", "aug.random_erase=0.5"]
# Small variants of the detectors whose training draws from the global RNG.
MODELS = {
    "demo_cnn": ["model.name=demo_cnn", "model.kwargs={dropout: 0.3}"],
    "gramnet": ["model.name=gramnet", "loss.name=nll"],  # Dropout(0.5) in its head
    "swin_t": ["model.name=swin_t", "model.kwargs={img_size: 32, embed_dim: 24, depths: [1, 1, 2, 1], "
               "num_heads: [1, 1, 2, 2], window_size: 2, drop_path_rate: 0.2}",
               "aug.mixup=0.8", "aug.cutmix=1.0", "aug.ema_decay=0.99"],  # its recipe's regularisers
    "f3net": ["model.name=f3net", "model.kwargs={img_size: 32}", "loss.name=bce"],  # Dropout before its head
}
PER_EPOCH = 12  # batches of 8 in the conftest demo tree's train split (checked below)


@pytest.fixture(scope="module")
def records(make_records) -> Path:
    return make_records("dali")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lines(run: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock field (the only one that may differ)."""
    return [{k: v for k, v in r.items() if k != "images_per_second"} for r in read_metrics(run / "metrics.jsonl")]


def _model(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints/last.pt", map_location="cpu", weights_only=True)["model"]


def _stopped_and_resumed(records: Path, run: Path, overrides: list[str], stops: list[int]) -> None:
    resume = False
    for stop in stops:
        with pytest.raises(TrainingInterrupted, match=f"at step {stop}"):
            train(DEMO, records, out=run, overrides=overrides, resume=resume, stop_at_step=stop)
        resume = True
    train(DEMO, records, out=run, overrides=overrides, resume=True)


def _assert_identical(straight: Path, split: Path, total: int) -> None:
    a, b = _lines(straight), _lines(split)
    assert [r["step"] for r in a if "loss" in r] == [r["step"] for r in b if "loss" in r]
    assert a == b  # losses, lrs, epochs and validation accuracies: ==, not approx
    assert max(r["step"] for r in a) == total
    final_a, final_b = _model(straight), _model(split)
    assert final_a.keys() == final_b.keys()
    for key in final_a:
        assert torch.equal(final_a[key], final_b[key]), key


@pytest.mark.parametrize(("name", "log_every", "stops"), [
    ("demo_cnn", 1, [3, PER_EPOCH, PER_EPOCH + 1]),  # mid-epoch, at the epoch's end, right after it
    ("demo_cnn", 3, [4, PER_EPOCH + 2]),  # stops inside a logging window: its partial sum survives
    ("gramnet", 2, [3, PER_EPOCH + 1]),
    ("swin_t", 2, [3, PER_EPOCH + 1]),
    pytest.param("f3net", 2, [3, PER_EPOCH + 1], marks=pytest.mark.heavy),  # 48M parameters: ~0.5 s a step
])
def test_stop_anywhere_and_resume_is_bit_identical(records: Path, tmp_path: Path, name: str, log_every: int,
                                                   stops: list[int]) -> None:
    from genimage_fast.loaders import build_loader

    assert len(build_loader(records, backend="cpu", batch_size=8, image_size=32, num_workers=0)) == PER_EPOCH
    total = PER_EPOCH + 3
    overrides = [*TINY, *MODELS[name], f"train.log_every={log_every}", "train.epochs=2",
                 f"train.max_steps={total}", "train.val_every=1", "schedule.warmup_epochs=1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(DEMO, records, out=straight, overrides=overrides)
    _stopped_and_resumed(records, split, overrides, stops)
    _assert_identical(straight, split, total)


def test_dropout_really_draws_from_the_global_rng(records: Path, tmp_path: Path) -> None:
    """The resume test above is only meaningful if dropout changes the result: two seeds of the
    dropout stream (same weights, same data) must give different losses."""
    from genimage_fast.engine import resume

    base = [*TINY, *MODELS["demo_cnn"], "train.log_every=1", "train.max_steps=2", "train.val_every=0"]
    train(DEMO, records, out=tmp_path / "a", overrides=base)
    salt = resume.STREAM_RNG_SALT
    try:
        resume.STREAM_RNG_SALT = salt + 1
        train(DEMO, records, out=tmp_path / "b", overrides=base)
    finally:
        resume.STREAM_RNG_SALT = salt
    assert _lines(tmp_path / "a") != _lines(tmp_path / "b")


# -- geometry ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_step_run(records: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("geometry") / "run"
    train(DEMO, records, out=run, overrides=[*TINY, "train.max_steps=1", "train.val_every=0"])
    return run


@pytest.mark.parametrize(("change", "message"), [
    ("train.batch_size=4", "train.batch_size was 8 there, now 4"),
    ("train.grad_accum=2", "global batch size was 8 there, now 16"),
    ("train.seed=1", "train.seed was 0 there, now 1"),
    ("data.generators=sdv14,adm", "data.generators was all there, now sdv14,adm"),
    ("data.selection_fraction=0.25", "data.selection_fraction was 0.0 there, now 0.25"),
])
def test_changed_geometry_is_refused_naming_key_and_values(records: Path, one_step_run: Path, change: str,
                                                           message: str) -> None:
    with pytest.raises(GenImageError, match=message) as err:
        train(DEMO, records, out=one_step_run, resume=True,
              overrides=[*TINY, "train.max_steps=2", "train.val_every=0", change])
    assert "\n" not in str(err.value)


def test_resume_on_another_record_set_is_refused(make_records, one_step_run: Path) -> None:
    other = make_records("dali", store="raw")
    with pytest.raises(GenImageError, match=r"record set \(train split files\) was \w+ there, now \w+"):
        train(DEMO, other, out=one_step_run, resume=True, overrides=[*TINY, "train.max_steps=2", "train.val_every=0"])


def test_resume_with_another_world_size_is_refused(records: Path, one_step_run: Path, tmp_path: Path) -> None:
    """A 2-rank checkpoint resumed by one process (the DDP run itself is in the heavy test)."""
    import shutil

    from genimage_fast.engine.checkpoint import save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(one_step_run, run)
    ckpt = torch.load(run / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    ckpt["geometry"] = {**ckpt["geometry"], "world_size": 2}
    save_checkpoint(run / "checkpoints/last.pt", ckpt)
    with pytest.raises(GenImageError, match="world_size was 2 there, now 1"):
        train(DEMO, records, out=run, resume=True, overrides=[*TINY, "train.max_steps=2", "train.val_every=0"])


# -- metrics.jsonl ------------------------------------------------------------------------------------


def test_half_written_metrics_line_is_dropped_with_a_warning(records: Path, tmp_path: Path, caplog) -> None:
    overrides = [*TINY, "train.log_every=1", "train.val_every=0", "train.max_steps=4"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(DEMO, records, out=straight, overrides=overrides)
    with pytest.raises(TrainingInterrupted):
        train(DEMO, records, out=split, overrides=overrides, stop_at_step=2)
    with (split / "metrics.jsonl").open("a") as fh:  # what SIGKILL mid-append leaves
        fh.write('{"step": 3, "epoch": 0, "lo')
    with caplog.at_level(logging.WARNING, logger="genimage_fast.engine.metrics"):
        train(DEMO, records, out=split, overrides=overrides, resume=True)
    assert any("malformed line 3" in r.getMessage() for r in caplog.records)
    assert _lines(straight) == _lines(split)


# -- per-rank streams ---------------------------------------------------------------------------------


def test_ranks_draw_distinct_dropout_masks_and_a_rank_repeats_its_own() -> None:
    from genimage_fast.engine.resume import seed_rank_streams

    def mask(rank: int) -> torch.Tensor:
        seed_rank_streams(0, rank)
        return torch.nn.functional.dropout(torch.ones(256), 0.5)

    assert torch.equal(mask(0), mask(0))
    assert not torch.equal(mask(0), mask(1))


# -- DDP (gloo, 2 processes) ----------------------------------------------------------------------------


def _torchrun(records: Path, run: Path, overrides: list[str], resume: bool = False) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node=2", "-m",
           "genimage_fast", "train", str(DEMO), "--data", str(records), "--out", str(run),
           "--set", *overrides, *(["--resume"] if resume else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.heavy
def test_ddp_two_ranks_resume_bit_identical_with_each_ranks_own_rng(records: Path, tmp_path: Path) -> None:
    """Each rank has its own dropout stream and gets its own RNG state back: were rank 1 given rank
    0's state (or the same seed), its masks, hence the averaged gradients, would differ."""
    base = [*TINY, *MODELS["demo_cnn"], "train.log_every=1", "train.epochs=2", "train.val_every=0"]
    total = 8  # 6 steps per epoch at 2 ranks x 8: the stop (max_steps=4) is mid-epoch
    straight, split = tmp_path / "straight", tmp_path / "split"
    _torchrun(records, straight, [*base, f"train.max_steps={total}"])
    _torchrun(records, split, [*base, "train.max_steps=4"])
    ckpt = torch.load(split / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    rank0, rank1 = ckpt["rng_by_rank"]
    assert not torch.equal(rank0["torch"], rank1["torch"])  # distinct per-rank streams, both saved
    _torchrun(records, split, [*base, f"train.max_steps={total}"], resume=True)
    a = [r for r in _lines(straight) if "loss" in r]
    b = [r for r in _lines(split) if "loss" in r]
    assert a == b and len(a) == total
    final_a, final_b = _model(straight), _model(split)
    for key in final_a:
        assert torch.equal(final_a[key], final_b[key]), key
