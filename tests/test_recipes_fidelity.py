"""Each recipe's training step against the code GenImage ran (GenImage-Dataset/GenImage detector_codes/).

For every recipe the whole step is built from the recipe file (augmentation, loss, optimizer,
schedule, Mixup/EMA where the original has them) at a tiny size and run once; its settings are
checked against values read from the original code, quoted below as repo:path:line (G = the
GenImage repository, `GenImage-Dataset/GenImage:detector_codes/`). The references are the originals'
own calls: torch.optim.SGD/Adam as the scripts construct them, timm's CosineLRScheduler stepped as
each script steps it, timm.data.Mixup, timm.utils.ModelEmaV2, timm's RepeatAugSampler (= DeiT's
RASampler), timm's / Swin's no-weight-decay rules, CNNDetection's EarlyStopping loop.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from timm.data import Mixup
from timm.data.distributed_sampler import RepeatAugSampler
from timm.loss import SoftTargetCrossEntropy
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV2
from torch import nn

from genimage_fast.config import load_config
from genimage_fast.engine.augment import build_train_augment
from genimage_fast.engine.ema import ModelEMA
from genimage_fast.engine.losses import build_loss
from genimage_fast.engine.mixup import DeviceMixup
from genimage_fast.engine.optim import build_optimizer, build_schedule, effective_lrs, resolve_batch
from genimage_fast.engine.recipe_parts import RecipeParts, resolve_run_batch
from genimage_fast.engine.train import build_model
from genimage_fast.errors import GenImageError
from genimage_fast.loaders.plan import EpochPlanner
from genimage_fast.loaders.transforms import TransformSpec

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CPU = torch.device("cpu")


@dataclass
class Step:
    cfg: Any
    net: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    parts: RecipeParts
    augment: Any
    loss_fn: Any


def build_step(recipe: str, *overrides: str, spe: int = 4, world_size: int = 1) -> Step:
    """The recipe's training step as the trainer assembles it (engine/train.py), on the CPU in fp32."""
    cfg = load_config(RECIPES / f"{recipe}.yaml", ("train.device=cpu", "train.precision=fp32", *overrides))
    resolve_run_batch(cfg, world_size)
    torch.manual_seed(0)
    net = build_model(cfg)
    optimizer = build_optimizer(net, cfg.optim, CPU)
    schedule = build_schedule(optimizer, cfg, spe, world_size)
    parts = RecipeParts(cfg, net, schedule, 0, world_size)
    return Step(cfg, net, optimizer, schedule, parts, build_train_augment(cfg.aug, cfg.loss),
                parts.loss(build_loss(cfg.loss)))


def run_step(st: Step, size: int, batch: int = 4) -> float:
    """One optimizer step on random uint8 images; returns the loss (and checks the weights moved)."""
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.arange(batch) % 2
    before = [p.detach().clone() for p in st.net.parameters()]
    x, y = st.augment(images, labels, torch.Generator().manual_seed(2))
    x, y = st.parts.mix(x, y, 0, 0)
    loss = st.loss_fn(st.net(x), y)
    loss.backward()
    st.optimizer.step()
    st.optimizer.zero_grad(set_to_none=True)
    st.schedule.step()
    st.parts.after_step(st.net, loss.detach())
    assert math.isfinite(float(loss.detach()))
    assert any(not torch.equal(a, p) for a, p in zip(before, st.net.parameters(), strict=True))
    return float(loss.detach())


def groups_by_decay(opt: torch.optim.Optimizer) -> dict[float, set[int]]:
    out: dict[float, set[int]] = {}
    for g in opt.param_groups:
        out.setdefault(float(g["weight_decay"]), set()).update(id(p) for p in g["params"])
    return out


def recipe_schedule(recipe: str, spe: int, world_size: int = 1) -> Any:
    """The recipe's schedule alone (build_schedule over a one-parameter optimizer): cheap to step."""
    cfg = load_config(RECIPES / f"{recipe}.yaml")
    resolve_run_batch(cfg, world_size)
    return build_schedule(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), cfg, spe, world_size)


def lrs_per_step(schedule: Any, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(schedule.get_last_lr()[0])
        schedule.step()
    return out


def timm_cosine(lr: float, **kw: Any) -> tuple[CosineLRScheduler, torch.optim.Optimizer]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    return CosineLRScheduler(opt, **kw), opt


# ---------------------------------------------------------------------------------------------
# ResNet-50 (G pytorch-image-models-0.6.12)


def test_resnet50_step_and_settings() -> None:
    st = build_step("resnet50", "train.batch_size=2", "train.global_batch_size=4")
    o, sc = st.cfg.optim, st.cfg.schedule
    # G pytorch-image-models-0.6.12/timm/optim/optim_factory.py:250-253: 'sgd' = optim.SGD(nesterov=True)
    # G pytorch-image-models-0.6.12/train.py:151 --momentum 0.9, :153 --weight-decay 2e-5, :166 --lr 0.05
    assert isinstance(st.optimizer, torch.optim.SGD)
    assert st.optimizer.defaults["nesterov"] and st.optimizer.defaults["momentum"] == 0.9 and o.weight_decay == 2e-5
    # G .../optim_factory.py:49 (param_groups_weight_decay): no decay on ndim <= 1 or *.bias; the same call here
    ref = param_groups_weight_decay(st.net, 2e-5)
    assert groups_by_decay(st.optimizer) == {float(g["weight_decay"]): {id(p) for p in g["params"]} for g in ref}
    # G pytorch-image-models-0.6.12/train.py:198 --cooldown-epochs 10; timm/scheduler/scheduler_factory.py:49
    # num_epochs = t_initial + cooldown: 200 + 10 epochs, the last 10 at min_lr
    assert st.cfg.train.epochs == 210 and sc.cooldown_epochs == 10
    run_step(st, size=32)  # JSD over 3 splits, RandAugment, random erasing, SGD
    # the per-epoch lr as train.py:683 steps it (lr_scheduler.step(epoch + 1) after each epoch), timm's scheduler
    # built as scheduler_factory.py:39-48 (train.py:164 cosine, :182 warmup-lr 1e-4, :184 min-lr 1e-6, :196 warmup 3)
    sched, opt = timm_cosine(0.05, t_initial=200, lr_min=1e-6, warmup_lr_init=1e-4, warmup_t=3, cycle_limit=1,
                             cycle_decay=0.1)
    ref_lrs = []
    for epoch in range(210):
        ref_lrs.append(opt.param_groups[0]["lr"])
        sched.step(epoch + 1)
    ours = lrs_per_step(recipe_schedule("resnet50", 3), 210 * 3)
    assert np.allclose(ours, np.repeat(ref_lrs, 3), rtol=1e-12, atol=0)
    assert ours[-1] == 1e-6 and ours[200 * 3 - 1] > 1e-6


def test_resnet50_global_batch_two_gpus_x_64() -> None:
    # DESIGN §5: GenImage ran timm's train.py on 2 GPUs x 64 (global 128); one device accumulates 2 x 64
    cfg = load_config(RECIPES / "resnet50.yaml")
    assert resolve_batch(cfg.train, 1) == (64, 2, 128)
    assert resolve_batch(cfg.train, 2) == (64, 1, 128)
    with pytest.raises(GenImageError, match="cannot be split over a world size of 3"):
        resolve_batch(cfg.train, 3)
    with pytest.raises(GenImageError, match=r"global_batch_size 100 is not train.batch_size 64"):
        load_config(RECIPES / "resnet50.yaml", ("train.global_batch_size=100",))
    with pytest.raises(GenImageError, match=r"!= train.batch_size 64 x world size 2 x train.grad_accum 2"):
        resolve_batch(load_config(RECIPES / "resnet50.yaml", ("train.grad_accum=2",)).train, 2)


# ---------------------------------------------------------------------------------------------
# DeiT-S (G deit-main, timm 0.3.2 per deit-main/requirements.txt)


def deit_no_decay(model: nn.Module) -> set[int]:
    """DeiT main.py:352 create_optimizer -> timm add_weight_decay: 1-D, *.bias, model.no_weight_decay()."""
    timm_net = model.net
    skip = timm_net.no_weight_decay()
    return {id(p) for n, p in timm_net.named_parameters() if p.ndim == 1 or n.endswith(".bias") or n in skip}


def test_deit_s_step_and_settings() -> None:
    st = build_step("deit_s", "model.kwargs.img_size=32", "train.batch_size=4", "train.global_batch_size=4")
    a, sc = st.cfg.aug, st.cfg.schedule
    # G deit-main/main.py:46 --drop-path 0.1 -> create_model(drop_path_rate=) (:268): the last block drops 0.1
    assert st.net.net.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)
    # G deit-main/main.py:350 linear_scaled_lr = lr * batch_size * world_size / 512 (warmup/min lr not scaled)
    eff = effective_lrs(load_config(RECIPES / "deit_s.yaml"), 1)
    assert (eff.lr, eff.warmup_lr, eff.min_lr) == pytest.approx((2e-4 * 256 / 512, 1e-6, 1e-5))
    assert effective_lrs(load_config(RECIPES / "deit_s.yaml", ("train.batch_size=64",)), 4).lr == \
        pytest.approx(2e-4 * 64 * 4 / 512)
    assert groups_by_decay(st.optimizer)[0.0] == deit_no_decay(st.net)
    assert groups_by_decay(st.optimizer)[0.05]  # main.py:66 --weight-decay 0.05 on the rest
    # G deit-main/main.py:128 --mixup 0.8, :130 --cutmix 1.0, :134 --mixup-prob 1.0, :136 --mixup-switch-prob 0.5,
    # :101 --smoothing 0.1; :52 --model-ema-decay 0.99996 (EMA on by default, :51); :107 repeated aug on
    assert (a.mixup, a.cutmix, a.mixup_prob, a.mixup_switch_prob) == (0.8, 1.0, 1.0, 0.5)
    assert st.cfg.loss.label_smoothing == 0.1 and a.ema_decay == 0.99996 and a.repeated_aug == 3
    # G deit-main/main.py:361 with Mixup the criterion is SoftTargetCrossEntropy (smoothing is in the targets)
    out, tgt = torch.randn(4, 2), torch.softmax(torch.randn(4, 2), dim=1)
    assert torch.allclose(st.loss_fn(out, tgt), SoftTargetCrossEntropy()(out, tgt))
    ema_before = copy.deepcopy(st.parts.ema.state_dict())
    run_step(st, size=32)
    moved = [k for k, v in st.parts.ema.state_dict().items() if not torch.equal(v, ema_before[k])]
    assert moved  # engine.py:72 model_ema.update(model) after every step
    # schedule: timm 0.3.2 CosineLRScheduler (t_initial 300, no warm-up prefix), main.py:79 warmup-lr 1e-6,
    # :81 min-lr 1e-5, :86 warmup 5; main.py:432 lr_scheduler.step(epoch) after training epoch `epoch`
    assert sc.per_epoch and not sc.warmup_prefix and sc.lag == 1 and st.cfg.train.epochs == 300  # main.py:35
    sched, opt = timm_cosine(1e-4, t_initial=300, lr_min=1e-5, warmup_lr_init=1e-6, warmup_t=5)
    ref = []
    for epoch in range(300):
        ref.append(opt.param_groups[0]["lr"])
        sched.step(epoch)
    assert np.allclose(lrs_per_step(recipe_schedule("deit_s", 2), 600), np.repeat(ref, 2), rtol=1e-12, atol=0)


def test_deit_repeated_aug_is_rasampler() -> None:
    # G deit-main/samplers.py:16 num_repeats 3, :35 num_selected = floor(len // 256 * 256 / replicas),
    # :48 repeat_interleave, :55 indices[rank:total:replicas]; timm's RepeatAugSampler is the same sampler
    n = 600
    for world in (1, 2, 3):
        for rank in range(world):
            planner = EpochPlanner(selected=np.arange(n), width=np.full(n, 64), height=np.full(n, 48),
                                   spec=TransformSpec(kind="rrc", image_size=32), batch_size=8, seed=0, rank=rank,
                                   world_size=world, drop_last=True, shuffle=False, repeated_aug=3)
            ref = list(RepeatAugSampler(range(n), num_replicas=world, rank=rank, shuffle=False, num_repeats=3))
            plans = planner.batches(0)
            ours = np.concatenate([p.indices for p in plans])
            assert ours.tolist() == ref[: len(ours)] and len(ref) - len(ours) < 8  # drop_last of the loader
    # shuffled: the same structure over the epoch's permutation; every copy gets its own crop
    planner = EpochPlanner(selected=np.arange(n), width=np.full(n, 64), height=np.full(n, 48),
                           spec=TransformSpec(kind="rrc", image_size=32), batch_size=6, seed=3, rank=0,
                           world_size=1, drop_last=True, shuffle=True, repeated_aug=3)
    plans = planner.batches(1)
    idx = np.concatenate([p.indices for p in plans])
    assert len(idx) == 510 and (idx[0::3] == idx[1::3]).all() and (idx[0::3] == idx[2::3]).all()
    boxes = np.concatenate([p.boxes for p in plans])
    assert not np.allclose(boxes[0::3], boxes[1::3])


def rand_bbox_0612(img_shape: tuple[int, ...], lam: float, margin: float = 0.0, count: Any = None) -> tuple:
    """G pytorch-image-models-0.6.12/timm/data/mixup.py:41-51, verbatim: the box GenImage's timm drew (newer timm
    rounds the upper edge of an odd cut up: `cy + (cut_h + 1) // 2`)."""
    ratio = np.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    margin_y, margin_x = int(margin * cut_h), int(margin * cut_w)
    cy = np.random.randint(0 + margin_y, img_h - margin_y, size=count)
    cx = np.random.randint(0 + margin_x, img_w - margin_x, size=count)
    yl = np.clip(cy - cut_h // 2, 0, img_h)
    yh = np.clip(cy + cut_h // 2, 0, img_h)
    xl = np.clip(cx - cut_w // 2, 0, img_w)
    xh = np.clip(cx + cut_w // 2, 0, img_w)
    return yl, yh, xl, xh


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
@pytest.mark.parametrize("box", ["timm_0.6.12", "installed_timm"])
def test_mixup_matches_timm(seed: int, box: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # timm.data.Mixup as DeiT main.py:257-260 builds it (mode 'batch'), same inputs and numpy seed; our default box
    # is GenImage's timm 0.6.12 one (its rand_bbox swapped into timm's Mixup), odd_box_fix = the installed timm's
    import timm.data.mixup as timm_mixup

    if box == "timm_0.6.12":
        monkeypatch.setattr(timm_mixup, "rand_bbox", rand_bbox_0612)
    x = torch.rand(6, 3, 16, 21, generator=torch.Generator().manual_seed(seed))
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    ref = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch", label_smoothing=0.1,
                num_classes=2)
    np.random.seed(seed)
    rx, ry = ref(x.clone(), y.clone())
    ours = DeviceMixup(0.8, 1.0, 1.0, 0.5, 0.1, 2, seed=seed, odd_box_fix=box == "installed_timm")
    ox, oy = ours(x.clone(), y.clone())
    assert torch.equal(ox, rx) and torch.allclose(oy, ry, atol=1e-7)


def test_mixup_covers_both_branches_and_even_batch() -> None:
    kinds = set()
    for seed in range(12):
        mix = DeviceMixup(0.8, 1.0, 1.0, 0.5, 0.1, 2, seed=seed)
        kinds.add(mix.params()[1])
    assert kinds == {True, False}  # seeds above exercise both CutMix and Mixup
    with pytest.raises(GenImageError, match="even batch"):
        DeviceMixup(0.8, 1.0)(torch.rand(3, 3, 4, 4), torch.tensor([0, 1, 0]))


def test_ema_matches_timm_model_ema_v2() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    ours, ref = ModelEMA(model, 0.99), ModelEmaV2(model, decay=0.99)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        model(torch.randn(5, 3, 6, 6)).sum().backward()
        opt.step()
        opt.zero_grad()
        ours.update(model)
        ref.update(model)
    ref_sd = ref.module.state_dict()
    for key, value in ours.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, ref_sd[key]), key
    assert not torch.equal(ours.state_dict()["0.weight"], model.state_dict()["0.weight"])


# ---------------------------------------------------------------------------------------------
# Swin-T (G Swin-Transformer-main)


def swin_no_decay(model: nn.Module) -> set[int]:
    """Swin optimizer.py:66 set_weight_decay: 1-D, *.bias, names in no_weight_decay(), keyword names;
    models/swin_transformer.py:581-586: {'absolute_pos_embed'}, keywords {'relative_position_bias_table'}."""
    skip, keywords = {"absolute_pos_embed"}, {"relative_position_bias_table"}
    return {id(p) for n, p in model.net.named_parameters()
            if len(p.shape) == 1 or n.endswith(".bias") or n in skip or any(k in n for k in keywords)}


def test_swin_t_step_and_settings() -> None:
    st = build_step("swin_t", "model.kwargs.img_size=64", "model.kwargs.window_size=2", "train.batch_size=4",
                    "train.global_batch_size=4")
    a = st.cfg.aug
    # G Swin-Transformer-main/configs/swin/swin_tiny_patch4_window7_224.yaml:4 DROP_PATH_RATE 0.2
    assert st.net.net.layers[-1].blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert groups_by_decay(st.optimizer)[0.0] == swin_no_decay(st.net)
    # G Swin-Transformer-main/config.py:211 MIXUP 0.8, :213 CUTMIX 1.0, :217 MIXUP_PROB 1.0, :219 SWITCH 0.5,
    # :156 CLIP_GRAD 5.0; main.py:111 SoftTargetCrossEntropy with Mixup
    assert (a.mixup, a.cutmix, a.mixup_prob, a.mixup_switch_prob, a.ema_decay, a.repeated_aug) == (0.8, 1.0, 1.0,
                                                                                                    0.5, 0.0, 1)
    assert st.cfg.train.clip_grad == 5.0 and st.parts.loss(None) is st.loss_fn
    run_step(st, size=64)
    # G Swin-Transformer-main/main.py:321-323 BASE_LR, WARMUP_LR, MIN_LR x BATCH_SIZE x world / 512
    cfg = load_config(RECIPES / "swin_t.yaml")
    eff = effective_lrs(cfg, 1)
    assert (eff.lr, eff.warmup_lr, eff.min_lr) == pytest.approx((5e-4 / 4, 5e-7 / 4, 5e-6 / 4))  # config.py:152-154
    # :326-328 x ACCUMULATION_STEPS: the global batch counts it
    eff2 = effective_lrs(load_config(RECIPES / "swin_t.yaml", ("train.batch_size=64",)), 1)
    assert eff2.lr == pytest.approx(5e-4 * 64 * 2 / 512)
    # G Swin-Transformer-main/lr_scheduler.py:17-33: per-step cosine, t_initial = steps - warm-up steps
    # (config.py:174 WARMUP_PREFIX True, :149 300 epochs, :150 warm-up 20); main.py:199 step_update after step idx
    spe = 2
    num_steps, warmup_steps = int(300 * spe), int(20 * spe)
    sched, opt = timm_cosine(eff.lr, t_initial=num_steps - warmup_steps, lr_min=eff.min_lr,
                             warmup_lr_init=eff.warmup_lr, warmup_t=warmup_steps, cycle_limit=1, t_in_epochs=False,
                             warmup_prefix=True)
    ref = []
    for epoch in range(300):
        for idx in range(spe):
            ref.append(opt.param_groups[0]["lr"])
            sched.step_update(epoch * spe + idx)
    assert np.allclose(lrs_per_step(recipe_schedule("swin_t", spe), num_steps), ref, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# CNNSpot (G CNNDetection-master)


def cnndetection_lrs(scores: list[float], lr: float) -> tuple[list[float], int]:
    """CNNDetection train.py:49-93 with earlystop.py:24-37 and networks/trainer.py:40-45, verbatim logic."""

    class EarlyStopping:
        def __init__(self, patience: int, delta: float) -> None:
            self.patience, self.delta, self.counter, self.best_score, self.early_stop = patience, delta, 0, None, False

        def __call__(self, score: float) -> None:
            if self.best_score is None:
                self.best_score = score
            elif score < self.best_score - self.delta:
                self.counter += 1
                if self.counter >= self.patience:
                    self.early_stop = True
            else:
                self.best_score, self.counter = score, 0

    early, lrs = EarlyStopping(patience=5, delta=-0.001), []  # options/train_options.py:7 earlystop_epoch 5
    for epoch, acc in enumerate(scores):
        lrs.append(lr)
        early(acc)
        if early.early_stop:
            lr /= 10.0
            if lr < 1e-6:
                return lrs, epoch
            early = EarlyStopping(patience=5, delta=-0.002)
    return lrs, len(scores)


def test_cnnspot_step_and_plateau() -> None:
    st = build_step("cnnspot", "data.image_size=32", "train.batch_size=4")
    # G CNNDetection-master/networks/trainer.py:27-28 Adam(lr, betas=(beta1, 0.999)), options/train_options.py:20
    # beta1 0.9; no weight decay
    assert isinstance(st.optimizer, torch.optim.Adam) and st.optimizer.defaults["betas"] == (0.9, 0.999)
    assert st.optimizer.defaults["weight_decay"] == 0 and st.cfg.optim.lr == 5e-4  # supp B: lr 0.0005
    run_step(st, size=32)
    rng = np.random.default_rng(0)
    for trial in range(20):  # plateaus, small gains (< and > delta), drops and the final stop
        scores = list(np.round(0.5 + np.cumsum(rng.choice([0.0, 0.0005, 0.0015, 0.003, -0.002], 60)), 6))
        ref_lrs, stop_epoch = cnndetection_lrs(scores, 5e-4)
        schedule = recipe_schedule("cnnspot", 1)
        ours = []
        for epoch, acc in enumerate(scores):
            ours.append(schedule.get_last_lr()[0])
            if not schedule.end_epoch(float(acc)):
                assert epoch == stop_epoch
                break
            schedule.step()
        else:
            assert stop_epoch == len(scores)
        assert np.allclose(ours, ref_lrs, rtol=1e-12, atol=0), trial


def test_cnnspot_plateau_on_train_loss_and_resume_state() -> None:
    schedule = recipe_schedule("cnnspot", 1)
    for _ in range(6):  # the training loss never improves: after 5 such epochs (+ the first) lr / 10
        schedule.record_loss(torch.tensor(1.0))
        assert schedule.end_epoch(None)
    assert schedule.get_last_lr()[0] == pytest.approx(5e-5) and schedule.plateau.history[-1] == -1.0
    again = recipe_schedule("cnnspot", 1)
    again.load_state_dict(schedule.state_dict())
    assert again.get_last_lr() == schedule.get_last_lr() and again.plateau.drops == 1


# ---------------------------------------------------------------------------------------------
# Spec (G AutoGAN-master) and GramNet (G Global_Texture_Enhancement...-master): decay on every parameter


def two_steps(st: Step, ref_opt: torch.optim.Optimizer, ref_net: nn.Module, size: int) -> None:
    """Our optimizer and the original's construction, same inputs for 2 steps (dampening acts from the
    second): identical weights."""
    g = torch.Generator().manual_seed(4)
    ref_net.train()
    for _ in range(2):
        x = torch.rand(2, 3, size, size, generator=g)
        y = torch.tensor([0, 1])
        for net, opt in ((st.net, st.optimizer), (ref_net, ref_opt)):
            torch.manual_seed(7)
            st.loss_fn(net(x), y).backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(st.net.named_parameters(), ref_net.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_spec_sgd_dampening_and_decay_on_all_params() -> None:
    st = build_step("spec", "data.image_size=32")
    ref_net = copy.deepcopy(st.net)
    # G AutoGAN-master/code/GAN_Detection_Train.py:368-370 optim.SGD(model.parameters(), lr, momentum=0.9,
    # dampening=0.9, weight_decay=args.wd); :89 --wd 1e-4; supp B lr 0.0002
    ref = torch.optim.SGD(ref_net.parameters(), lr=2e-4, momentum=0.9, dampening=0.9, weight_decay=1e-4)
    assert len(st.optimizer.param_groups) == 1 and st.optimizer.defaults["dampening"] == 0.9
    two_steps(st, ref, ref_net, size=32)
    # :351-361 adjust_learning_rate sets group['lr'] = args.lr every epoch: a constant lr
    assert set(lrs_per_step(recipe_schedule("spec", 5), 50)) == {2e-4}
    run_step(st, size=32)


def test_gramnet_adam_decay_on_all_params() -> None:
    st = build_step("gramnet", "data.image_size=32")
    ref_net = copy.deepcopy(st.net)
    # G Global_Texture_Enhancement_for_Fake_Face_Detection_in_the-Wild-master/stylegan-ffhq/main.py:105
    # optim.Adam(model.parameters(), lr=0.0003, weight_decay=1e-4), then :299-301 lr = 0.00001 for every group
    ref = torch.optim.Adam(ref_net.parameters(), lr=0.0003, weight_decay=1e-4)
    for group in ref.param_groups:
        group["lr"] = 0.00001
    two_steps(st, ref, ref_net, size=32)
    assert set(lrs_per_step(recipe_schedule("gramnet", 5), 10)) == {1e-5}
    run_step(st, size=32)


# ---------------------------------------------------------------------------------------------
# F3Net (supp B; yyk-wew/F3Net trainer.py)


def test_f3net_optimizer_settings() -> None:
    cfg = load_config(RECIPES / "f3net.yaml")
    torch.manual_seed(0)
    net = build_model(cfg)
    opt = build_optimizer(net, cfg.optim, CPU)
    # supp B: Adam, lr 0.0002, batch 12, 5 epochs; yyk-wew/F3Net trainer.py: Adam(..., betas=(0.9, 0.999)), no decay
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["betas"] == (0.9, 0.999)
    assert cfg.optim.lr == 2e-4 and cfg.optim.weight_decay == 0 and cfg.train.batch_size == 12
    assert cfg.train.epochs == 5 and cfg.schedule.name == "constant" and cfg.loss.name == "bce"


@pytest.mark.heavy
def test_f3net_step() -> None:
    run_step(build_step("f3net", "train.batch_size=2"), size=299, batch=2)


# ---------------------------------------------------------------------------------------------
# Supplement Table 1 joins the paper numbers

SUPPLEMENT = Path(__file__).resolve().parents[2] / "shared" / "papers" / "genimage-supplement.txt"


def test_supplement_table1_numbers() -> None:
    from genimage_fast.reports.paper_numbers import SUPP_TABLE1, SUPPLEMENT_TABLES

    values = [row["avg"] for row in SUPP_TABLE1.rows.values()]
    assert values == [99.5, 99.8, 99.9, 98.3, 98.0, 92.1, 99.2] and SUPPLEMENT_TABLES["supp_table1"] is SUPP_TABLE1
    assert list(SUPP_TABLE1.rows) == ["resnet50", "deit_s", "swin_t", "cnnspot", "spec", "f3net", "gramnet"]
    assert {p.stem for p in RECIPES.glob("*.yaml")} >= set(SUPP_TABLE1.rows)  # every row is a recipe
    if SUPPLEMENT.is_file():  # the printed line, "Accuracy(%) 99.5 99.8 ...", in the method order of its header
        text = SUPPLEMENT.read_text()
        header = next(line for line in text.splitlines() if line.startswith("Method ResNet-50"))
        printed = next(line for line in text.splitlines() if line.startswith("Accuracy(%)"))
        assert header.split()[1:] == ["ResNet-50", "DeiT-S", "Swin-T", "CNNSpot", "Spec", "F3Net", "GramNet"]
        assert [float(v) for v in printed.split()[1:]] == values


# ---------------------------------------------------------------------------------------------
# `genimage-fast train RECIPE --dry-run` prints the effective settings of every recipe


EXPECTED_DRY_RUN = {  # recipe: (global batch, effective lr, total epochs, cooldown)
    "resnet50": (128, 0.05, 210, 10), "deit_s": (256, 1e-4, 300, 0), "swin_t": (128, 1.25e-4, 300, 0),
    "cnnspot": (64, 5e-4, 30, 0), "spec": (64, 2e-4, 64, 0), "f3net": (12, 2e-4, 5, 0), "gramnet": (14, 1e-5, 5, 0),
    # NPR README.md:224 (chuangchuangtan/NPR-DeepfakeDetection, GenImage section): --batch_size 32 --lr 0.0002 --niter 1
    "npr_genimage": (32, 2e-4, 1, 0),
}


HEAVY_BUILD = {"deit_s", "swin_t", "f3net"}  # their full-size models take seconds to build on the CPU box


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=pytest.mark.heavy) if r in HEAVY_BUILD else r
                                    for r in sorted(EXPECTED_DRY_RUN)])
def test_dry_run_prints_effective_settings(recipe: str, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from genimage_fast.engine.train import train_command

    assert train_command(str(RECIPES / f"{recipe}.yaml"), None, None, None, [], False, True) == 0
    out = capsys.readouterr().out
    block = out[out.index("# effective:"):]
    eff = yaml.safe_load("\n".join(line[2:] for line in block.splitlines() if line.startswith("# ")))["effective"]
    global_batch, lr, epochs, cooldown = EXPECTED_DRY_RUN[recipe]
    assert eff["batch"]["global"] == global_batch and eff["optimizer"]["effective_lr"] == pytest.approx(lr)
    assert eff["epochs"]["total"] == epochs and eff["epochs"]["cooldown"] == cooldown
    assert eff["transforms"]["train"] and eff["init"] and "drop_path_rate" in eff["regularisers"]
