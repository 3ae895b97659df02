"""Issue #17 item 1: a training step of every recipe makes no host sync.

On the CPU the step runs under `engine.syncs.SyncCounter` (a TorchDispatchMode counting
`aten._local_scalar_dense` — every `.item()`, `int()`, `bool()` of a tensor —, data-dependent shapes,
device reads and pageable uploads) and must count zero. The counted region is `Trainer.train_step`:
augmentation, forward, loss, backward, optimizer and schedule. Logging steps do sync, on purpose:
`Trainer._log` reads the window's loss every `train.log_every` steps (and `_guard_finite` before a
checkpoint); they are outside the counted step, as are the loader's workers.

On CUDA the optimizer is fused (`engine.optim.build_optimizer`); torch's CPU has the same fused
kernels, and the CPU test uses them, because the unfused CPU Adam reads its host-side step counters
with `.item()` (host values on CUDA as well, so not a sync there, but the counter cannot tell).
On a GPU, `torch.cuda.set_sync_debug_mode("error")` must pass over a step too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genimage_fast.config import load_config
from genimage_fast.engine import train as train_module
from genimage_fast.engine.distributed import DistContext
from genimage_fast.engine.optim import OPTIMIZERS, param_groups
from genimage_fast.engine.syncs import SyncCounter, cuda_sync_debug
from tests.conftest import requires_cuda

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# Tiny inputs: the sync structure of a step does not depend on the image size. Swin-T's windows need 224.
SIZES = {"swin_t": 224, "f3net": 64, "deit_s": 32, "univfd": 224}
MODEL_KWARGS = {"f3net": ("model.kwargs.img_size=64",), "deit_s": ("model.kwargs.img_size=32",),
                "univfd": ("model.kwargs.embed_dim=32", "model.kwargs.depth=1", "model.kwargs.num_heads=2")}
NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))


def test_every_recipe_is_covered() -> None:
    assert {"cnnspot", "deit_s", "demo", "f3net", "gramnet", "resnet50", "spec", "swin_t"} <= set(NAMES)


def _fused_everywhere(model, cfg, device):  # noqa: ANN001, ANN202 - build_optimizer's signature
    """build_optimizer with the fused kernels on the CPU as well (see the module docstring)."""
    return OPTIMIZERS.get(cfg.name)(param_groups(model, cfg.weight_decay), cfg, {"fused": True} if cfg.fused else {})


def make_trainer(name: str, records: Path, device: str, monkeypatch: pytest.MonkeyPatch):
    size = SIZES.get(name, 32)
    overrides = (f"data.image_size={size}", f"data.resize_size={size + size // 8}", "train.batch_size=2",
                 "data.backend=cpu", "data.num_workers=0", f"train.device={device}", "train.compile=false",
                 "train.global_batch_size=0", "aug.repeated_aug=1",  # sampler and batch plan: loader-side, not the step
                 *MODEL_KWARGS.get(name, ()))
    cfg = load_config(RECIPES / f"{name}.yaml", overrides)
    if device == "cpu":
        monkeypatch.setattr(train_module, "build_optimizer", _fused_everywhere)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device(device))
    return train_module.Trainer(cfg, records, None, None, ctx)


@pytest.fixture(scope="module")
def records(make_records) -> Path:
    return make_records("dali")


@pytest.mark.parametrize("name", NAMES)
def test_training_step_makes_no_host_sync(name: str, records: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    trainer = make_trainer(name, records, "cpu", monkeypatch)
    batch = next(iter(trainer.loader))
    with SyncCounter() as counter:
        loss, images = trainer.train_step([batch])
    assert counter.counts.total == 0, (name, counter.counts.as_dict())
    assert images == 2 and torch.isfinite(loss)  # the step ran (read after the counted region)


def test_the_counter_sees_a_sync_in_a_step(records: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a step that reads its loss (what a log step does) is counted."""
    trainer = make_trainer("demo", records, "cpu", monkeypatch)
    batch = next(iter(trainer.loader))
    with SyncCounter() as counter:
        float(trainer.train_step([batch])[0])
    assert counter.counts.scalar_reads == 1


@requires_cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_step_passes_sync_debug_error_mode(name: str, records: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer(name, records, "cuda", monkeypatch)
    batches = iter(trainer.loader)
    trainer.train_step([next(batches)])  # first step: cuDNN / Triton set-up may sync once
    batch = next(batches)
    torch.cuda.synchronize()
    with cuda_sync_debug("error"), SyncCounter() as counter:
        loss, _ = trainer.train_step([batch])
    assert counter.counts.total == 0, counter.counts.as_dict()
    assert torch.isfinite(loss)


def test_bench_train_reports_host_syncs_and_the_first_step_apart(records: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from genimage_fast.bench.train import bench_train

    monkeypatch.setattr(train_module, "build_optimizer", _fused_everywhere)
    rows, settings = bench_train(str(RECIPES / "demo.yaml"), str(records), steps=1, warmup=0, device="cpu",
                                 overrides=("train.batch_size=2", "data.image_size=32", "data.num_workers=0"))
    assert settings["host_syncs_per_step"]["total"] == 0, settings["host_syncs_per_step"]
    assert settings["first_step_seconds"] > 0 and settings["decoder"] == "full"
    assert [r.name for r in rows] == ["train/synthetic", "train/loader", "loader only"]
