"""Engine building blocks: LR schedule, optimizers, checkpoints + RNG, precision, signals, distributed."""

from __future__ import annotations

import math
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genimage_fast.config import OptimConfig, ScheduleConfig
from genimage_fast.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint, unwrap_model
from genimage_fast.engine.distributed import setup_distributed
from genimage_fast.engine.optim import LRSchedule, build_optimizer, param_groups
from genimage_fast.engine.precision import build_precision
from genimage_fast.engine.signals import StopOnSignal
from genimage_fast.errors import GenImageError


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def _lrs(cfg: ScheduleConfig, lr: float, spe: int, epochs: int, steps: int) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = LRSchedule(opt, cfg, steps_per_epoch=spe, epochs=epochs)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        sched.step()
    return out


def test_cosine_with_warmup_matches_closed_form() -> None:
    cfg = ScheduleConfig(name="cosine", warmup_epochs=1, warmup_lr=0.01, min_lr=0.001)
    lrs = _lrs(cfg, lr=0.1, spe=4, epochs=5, steps=20)
    warm = [0.01 + (0.1 - 0.01) * s / 4 for s in range(4)]
    cos = [0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * t / 16)) for t in range(16)]
    assert np.allclose(lrs, warm + cos)


def test_step_and_constant_schedules() -> None:
    lrs = _lrs(ScheduleConfig(name="step", decay_epochs=2, decay_rate=0.5), lr=1.0, spe=3, epochs=6, steps=14)
    assert lrs == [1.0] * 6 + [0.5] * 6 + [0.25] * 2
    assert _lrs(ScheduleConfig(name="constant"), lr=0.3, spe=2, epochs=2, steps=4) == [0.3] * 4


def test_schedule_state_restores_lr() -> None:
    cfg = ScheduleConfig(name="cosine")
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = LRSchedule(opt, cfg, steps_per_epoch=10, epochs=1)
    for _ in range(7):
        sched.step()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = LRSchedule(opt2, cfg, steps_per_epoch=10, epochs=1)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] < 0.1


def test_optimizers_by_name_and_no_decay_on_1d() -> None:
    model = _model()
    model(torch.zeros(1, 3, 6, 6))
    groups = param_groups(model, 0.1)
    assert all(p.ndim > 1 for p in groups[0]["params"]) and groups[1]["weight_decay"] == 0.0
    for name, cls in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        assert type(build_optimizer(model, OptimConfig(name=name), torch.device("cpu"))) is cls
    with pytest.raises(GenImageError, match="did you mean: adam"):
        build_optimizer(model, OptimConfig(name="adan"), torch.device("cpu"))


def test_checkpoint_roundtrip_weights_only_and_rng(tmp_path) -> None:
    model = _model()
    model(torch.zeros(1, 3, 6, 6))
    opt = build_optimizer(model, OptimConfig(name="adamw"), torch.device("cpu"))
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(1), np.random.seed(2), random.seed(3), random.gauss(0, 1)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": capture_rng({"aug": gen}),
             "config": {"model": {"name": "x"}}, "epoch": 1, "step": 2, "loader": {"epoch": 1, "batch": 3}}
    path = save_checkpoint(tmp_path / "c" / "last.pt", state)
    expected = (torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), torch.rand(2, generator=gen))
    torch.manual_seed(9), np.random.seed(9), random.seed(9), gen.manual_seed(9)
    loaded = load_checkpoint(path)  # weights_only=True inside
    assert loaded["version"] == 1 and loaded["loader"] == {"epoch": 1, "batch": 3}
    restore_rng(loaded["rng"], {"aug": gen})
    again = (torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), torch.rand(2, generator=gen))
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:4] == again[2:4] and torch.equal(expected[4], again[4])
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded["model"][key])
    assert [p.name for p in tmp_path.joinpath("c").iterdir()] == ["last.pt"]  # no temp files left


def test_load_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(GenImageError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GenImageError, match="cannot read checkpoint"):
        load_checkpoint(bad)


def test_unwrap_model_strips_compile_wrapper() -> None:
    model = nn.Linear(2, 2)
    assert unwrap_model(torch.compile(model)) is model
    assert unwrap_model(model) is model


def test_precision_modes_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert build_precision("fp32", cpu).scaler is None and build_precision("bf16", cpu).scaler is None
    layer = nn.Linear(4, 4)
    with build_precision("bf16", cpu).autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with build_precision("fp32", cpu).autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.float32
    fp16 = build_precision("fp16", cpu)
    assert fp16.scaler is not None
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.weight.detach().clone()
    with fp16.autocast():
        loss = layer(torch.randn(2, 4)).float().pow(2).mean()
    fp16.backward(loss)
    fp16.step(opt)
    assert not torch.equal(before, layer.weight) and "scale" in fp16.state_dict()


def test_stop_on_signal_sets_flag_and_restores_handler() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous


def test_single_process_context(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = setup_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    if not torch.cuda.is_available():
        with pytest.raises(GenImageError, match="no CUDA"):
            setup_distributed("cuda")


# ---------------------------------------------------------------------------------------------
# Recipe parts (issue #13): schedule semantics, parameter groups, plateau, Mixup/EMA in a resumed run


def test_schedule_per_epoch_cooldown_and_lag() -> None:
    # per_epoch: constant within an epoch; cooldown: the last epochs at min_lr; no warm-up prefix: the cosine
    # spans epochs 0..(epochs - cooldown) and the warm-up overrides its first units; lag: unit t uses t - 1
    cfg = ScheduleConfig(name="cosine", warmup_epochs=2, warmup_lr=0.0, min_lr=0.01, per_epoch=True,
                         warmup_prefix=False, cooldown_epochs=2)
    lrs = _lrs(cfg, lr=1.0, spe=3, epochs=8, steps=24)
    per_epoch = [0.0, 0.5] + [0.01 + 0.495 * (1 + math.cos(math.pi * e / 6)) for e in range(2, 6)] + [0.01, 0.01]
    assert np.allclose(lrs, np.repeat(per_epoch, 3))
    lagged = _lrs(ScheduleConfig(**{**cfg.__dict__, "lag": 1}), lr=1.0, spe=3, epochs=8, steps=24)
    assert np.allclose(lagged, np.repeat([per_epoch[0]] + per_epoch[:-1], 3))
    with pytest.raises(GenImageError, match="cooldown_epochs 8 must be below train.epochs 8"):
        _lrs(ScheduleConfig(cooldown_epochs=8), lr=1.0, spe=1, epochs=8, steps=1)


def test_param_groups_keywords_and_decay_all() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    model.register_parameter("pos_embed", nn.Parameter(torch.zeros(1, 2, 4)))
    groups = param_groups(model, 0.1, no_weight_decay=["pos_embed"])
    assert [len(g["params"]) for g in groups] == [1, 4] and groups[0]["params"][0] is model[0].weight
    assert [len(g["params"]) for g in param_groups(model, 0.1, decay_all=True)] == [5]
    sgd = build_optimizer(model, OptimConfig(name="sgd", dampening=0.9, nesterov=True), torch.device("cpu"))
    assert sgd.defaults["dampening"] == 0.9 and not sgd.defaults["nesterov"]  # torch: nesterov needs dampening 0


def test_mixup_ema_plateau_run_resumes_exactly(make_records, tmp_path) -> None:
    from genimage_fast.engine.metrics import read_metrics
    from genimage_fast.engine.signals import TrainingInterrupted
    from genimage_fast.engine.train import train

    records = make_records("dali")
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    overrides = ["data.image_size=32", "data.num_workers=0", "train.batch_size=8", "train.device=cpu",
                 "train.precision=fp32", "train.epochs=2", "train.max_steps=15", "train.log_every=1",
                 "aug.mixup=0.8", "aug.cutmix=1.0", "aug.ema_decay=0.9", "schedule.name=plateau",
                 "schedule.plateau_patience=1", "schedule.warmup_epochs=0"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(recipe, records, out=tmp_path / "a", overrides=overrides)
        with pytest.raises(TrainingInterrupted, match="at step 5"):
            train(recipe, records, out=tmp_path / "b", overrides=overrides, stop_at_step=5)
        train(recipe, records, out=tmp_path / "b", overrides=overrides, resume=True)
    finally:
        torch.set_num_threads(before)

    def lines(run: str) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "images_per_second"}
                for r in read_metrics(tmp_path / run / "metrics.jsonl")]

    assert lines("a") == lines("b")
    assert any("val_accuracy_ema" in r for r in lines("a"))
    plateau = [r for r in lines("a") if "plateau_monitor" in r]
    assert plateau and plateau[0]["plateau_monitor"] == "train_loss"
    a, b = (torch.load(tmp_path / r / "checkpoints/last.pt", weights_only=True) for r in ("a", "b"))
    for key in ("model", "model_ema"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert any(not torch.equal(a["model"][k], a["model_ema"][k]) for k in a["model"])


def test_recipe_keys_are_one_line_errors() -> None:
    from genimage_fast.config import config_from_dict
    from genimage_fast.engine.recipe_parts import check_recipe_keys

    for overrides, message in ((["aug.mixup=0.8", "loss.name=bce"], "need loss.name 'ce'"),
                               (["aug.repeated_aug=0"], "repeated_aug"),
                               (["schedule.plateau_factor=1.5"], "plateau_factor"),
                               (["aug.mixup_switch_prob=2"], "mixup_switch_prob"),
                               (["schedule.name=plateau", "data.selection_fraction=0.1", "train.val_every=2"],
                                "needs train.val_every 1")):
        with pytest.raises(GenImageError, match=message):
            check_recipe_keys(config_from_dict({}, overrides))
