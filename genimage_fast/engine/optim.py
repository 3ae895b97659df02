"""Optimizers by name, parameter groups, global batch and lr scaling, and the learning-rate schedule.

The schedule is a function of the optimizer step alone (plus, for `plateau`, the epoch scores it
was shown), so a resumed run lands on exactly the same learning rate; its state is plain numbers
and loads with `weights_only=True`.

Schedule semantics, as the originals' schedulers (timm's CosineLRScheduler, which timm train.py,
DeiT and Swin all use):
- `per_epoch`: the lr changes at epoch boundaries only (timm's t_in_epochs=True: timm train.py and
  DeiT main.py call `lr_scheduler.step(epoch)`); else every optimizer step (Swin's step_update).
- `warmup_prefix`: True = the cosine starts after the warm-up (Swin); False = the cosine runs over
  all `epochs - cooldown_epochs` and the warm-up only overrides its first units (timm, DeiT).
- `cooldown_epochs`: the last epochs of `train.epochs` stay at min_lr (timm create_scheduler adds
  `--cooldown-epochs` after the cosine cycle: num_epochs = epochs + cooldown).
- `lag`: unit t trains with the schedule's value at t - lag (DeiT steps the scheduler after an
  epoch with that epoch's index, Swin after a step with that step's index: lag 1).
- `plateau` (CNNDetection train.py + earlystop.py): constant lr, divided by 10 when the monitored
  score has not improved by `plateau_delta` for `plateau_patience` epochs; training stops when the
  new lr falls under `plateau_min_lr`. The score is the selection-set accuracy, or minus the
  epoch's mean training loss when the run has no selection set (the trainer says which).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genimage_fast.config import OptimConfig, RecipeConfig, ScheduleConfig, TrainConfig
from genimage_fast.errors import GenImageError
from genimage_fast.registry import Registry

OPTIMIZERS: Registry[Callable[[list[dict[str, Any]], OptimConfig, dict[str, Any]], torch.optim.Optimizer]] = \
    Registry("optimizer")

LR_SCALE_BATCH = 512  # DeiT main.py / Swin main.py: lr x global batch / 512.0


@OPTIMIZERS.register("sgd")
def _sgd(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    nesterov = cfg.nesterov and cfg.momentum > 0 and cfg.dampening == 0  # torch: Nesterov needs no dampening
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, dampening=cfg.dampening, nesterov=nesterov,
                           **extra)


@OPTIMIZERS.register("adam")
def _adam(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)


@OPTIMIZERS.register("adamw")
def _adamw(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)


def skips_weight_decay(name: str, param: torch.Tensor, keywords: Sequence[str] = ()) -> bool:
    """timm / DeiT / Swin rule: 1-D tensors, biases, and names holding a no-decay keyword get none."""
    return param.ndim <= 1 or name.endswith(".bias") or any(k in name for k in keywords)


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False,
                 no_weight_decay: Sequence[str] = ()) -> list[dict[str, Any]]:
    """decay_all: one group, decay on everything (torch's `Optimizer(model.parameters(), weight_decay=)`,
    as AutoGAN and GramNet call it); else biases, norms and the keyword-named tensors get none."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if decay_all:
        return [{"params": [p for _, p in named], "weight_decay": weight_decay}]
    decay = [p for n, p in named if not skips_weight_decay(n, p, no_weight_decay)]
    no_decay = [p for n, p in named if skips_weight_decay(n, p, no_weight_decay)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """The named optimizer; fused kernels on CUDA (one launch for all parameters) when cfg.fused."""
    extra = {"fused": True} if cfg.fused and device.type == "cuda" else {}
    groups = param_groups(model, cfg.weight_decay, cfg.decay_all, cfg.no_weight_decay)
    return OPTIMIZERS.get(cfg.name)(groups, cfg, extra)


# ----------------------------------------------------------------------------------------------
# Global batch and lr scaling


def resolve_batch(tc: TrainConfig, world_size: int) -> tuple[int, int, int]:
    """(per-rank batch, grad_accum, global batch). `train.global_batch_size` set: grad_accum is derived
    as global / (batch_size x world) when left at 1, else all three must agree."""
    per_step = tc.batch_size * world_size
    if not tc.global_batch_size:
        return tc.batch_size, tc.grad_accum, per_step * tc.grad_accum
    g = tc.global_batch_size
    if tc.grad_accum == 1 and g % per_step == 0:
        return tc.batch_size, g // per_step, g
    if per_step * tc.grad_accum == g:
        return tc.batch_size, tc.grad_accum, g
    raise GenImageError(f"train.global_batch_size {g} != train.batch_size {tc.batch_size} x world size {world_size}"
                        f" x train.grad_accum {tc.grad_accum}; set train.batch_size to a divisor of {g // world_size}"
                        if g % world_size == 0 else
                        f"train.global_batch_size {g} cannot be split over a world size of {world_size}")


@dataclass(frozen=True)
class EffectiveLR:
    """The lrs a run really uses, after the originals' batch scaling (logged into the run)."""

    lr: float
    warmup_lr: float
    min_lr: float
    global_batch: int
    scale: float  # global_batch / 512 when scaled, else 1

    def as_dict(self) -> dict[str, float]:
        return {"lr": self.lr, "warmup_lr": self.warmup_lr, "min_lr": self.min_lr,
                "global_batch": self.global_batch, "lr_scale": self.scale}


def effective_lrs(cfg: RecipeConfig, world_size: int = 1) -> EffectiveLR:
    """optim.lr_scale: 'lr' scales the lr only (DeiT main.py); 'all' also warmup_lr and min_lr (Swin)."""
    global_batch = resolve_batch(cfg.train, world_size)[2]
    mode = cfg.optim.lr_scale
    scale = global_batch / LR_SCALE_BATCH if mode != "none" else 1.0
    rest = scale if mode == "all" else 1.0
    return EffectiveLR(lr=cfg.optim.lr * scale, warmup_lr=cfg.schedule.warmup_lr * rest,
                       min_lr=cfg.schedule.min_lr * rest, global_batch=global_batch, scale=scale)


# ----------------------------------------------------------------------------------------------
# The schedule


class LRSchedule:
    """Sets every param group's lr from the step number: warm-up, then the named decay."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int,
                 epochs: int, base_lr: float | None = None, warmup_lr: float | None = None,
                 min_lr: float | None = None) -> None:
        """base_lr: the peak lr (the recipe's optim.lr after scaling); None = each group's current lr.
        Passing it explicitly lets a resumed run take a new lr although the optimizer state carries
        the old one. warmup_lr / min_lr: the scaled values (None = the config's)."""
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [group["lr"] if base_lr is None else base_lr for group in optimizer.param_groups]
        self.warmup_lr = cfg.warmup_lr if warmup_lr is None else warmup_lr
        self.min_lr = cfg.min_lr if min_lr is None else min_lr
        self.steps_per_epoch = max(1, steps_per_epoch)
        if not 0 <= cfg.cooldown_epochs < max(1, epochs) and epochs > 0:
            raise GenImageError(f"schedule.cooldown_epochs {cfg.cooldown_epochs} must be below train.epochs {epochs}")
        units_per_epoch = 1 if cfg.per_epoch else self.steps_per_epoch
        self.total_units = max(1, units_per_epoch * (epochs - cfg.cooldown_epochs))  # the cosine cycle
        self.total_steps = self.total_units  # kept for the decay functions' older name
        self.warmup_steps = int(round(cfg.warmup_epochs * units_per_epoch))  # in units (epochs or steps)
        self.decay_units = max(1, int(round(cfg.decay_epochs * units_per_epoch)))
        self.step_num = 0
        self.plateau = Plateau(cfg, min(self.base_lrs, default=0.0)) if cfg.name == "plateau" else None
        self._decay = DECAYS.get(cfg.name)
        self._apply()

    def unit(self, step: int) -> int:
        """The schedule's time for optimizer step `step`: its epoch (per_epoch) or the step, minus lag."""
        t = step // self.steps_per_epoch if self.cfg.per_epoch else step
        return max(0, t - self.cfg.lag)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr at `step` (0-based: the step about to be taken) for a group whose peak is base_lr."""
        t = self.unit(step)
        if t < self.warmup_steps:
            start = min(self.warmup_lr, base_lr)
            return start + (base_lr - start) * t / self.warmup_steps
        return self._decay(self, t - self.warmup_steps if self.cfg.warmup_prefix else t, base_lr)

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(self.step_num, base)

    def step(self) -> None:
        self.step_num += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # -- plateau ----------------------------------------------------------------------------------

    def record_loss(self, loss: torch.Tensor) -> None:
        """plateau only: add a step's loss (kept on the device) to the epoch's mean."""
        if self.plateau is not None:
            self.plateau.record_loss(loss)

    def end_epoch(self, score: float | None) -> bool:
        """plateau only: show the epoch's score (None = use -mean train loss); False = stop training."""
        if self.plateau is None:
            return True
        keep_going = self.plateau.end_epoch(score)
        self._apply()
        return keep_going

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"step_num": self.step_num}
        if self.plateau is not None:
            state["plateau"] = self.plateau.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_num = int(state["step_num"])
        if self.plateau is not None and "plateau" in state:
            self.plateau.load_state_dict(state["plateau"])
        self._apply()


class Plateau:
    """CNNDetection's EarlyStopping + Trainer.adjust_learning_rate, as one state machine.

    EarlyStopping(patience, delta=-d): the first score is the best; a score below best + d counts an
    epoch without improvement (patience of them stops), any other score becomes the best and resets
    the count. On a stop the lr is divided by 10 (`plateau_factor`) and a fresh EarlyStopping starts
    with d = plateau_delta_after; when the divided lr is below plateau_min_lr, training ends.
    """

    def __init__(self, cfg: ScheduleConfig, base_lr: float) -> None:
        self.cfg = cfg
        self.base_lr = base_lr  # CNNDetection: stop when any group's divided lr < min_lr
        self.factor = 1.0
        self.best: float | None = None
        self.counter = 0
        self.drops = 0
        self.stopped = False
        self.loss_sum: torch.Tensor | float = 0.0
        self.loss_count = 0
        self.history: list[float] = []

    @property
    def delta(self) -> float:
        return self.cfg.plateau_delta if self.drops == 0 else self.cfg.plateau_delta_after

    def record_loss(self, loss: torch.Tensor) -> None:
        self.loss_sum = self.loss_sum + loss.detach().float()
        self.loss_count += 1

    def epoch_mean_loss(self) -> torch.Tensor:
        """The epoch's mean training loss so far (a tensor where the losses live; ranks average it)."""
        total = self.loss_sum if isinstance(self.loss_sum, torch.Tensor) else torch.tensor(float(self.loss_sum))
        return total / max(1, self.loss_count)

    def end_epoch(self, score: float | None) -> bool:
        if score is None:  # no selection set: the epoch's mean training loss (lower is better)
            score = -float(self.epoch_mean_loss())  # one host sync per epoch
        self.loss_sum, self.loss_count = 0.0, 0
        self.history.append(float(score))
        if self.best is None or score >= self.best + self.delta:
            self.best, self.counter = float(score), 0
            return True
        self.counter += 1
        if self.counter < self.cfg.plateau_patience:
            return True
        self.drops += 1
        self.factor *= self.cfg.plateau_factor
        self.best, self.counter = None, 0  # a fresh EarlyStopping after the drop
        if self.lr_below_min():
            self.stopped = True
        return not self.stopped

    def lr_below_min(self) -> bool:
        return self.base_lr * self.factor < self.cfg.plateau_min_lr

    def state_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "best": self.best, "counter": self.counter, "drops": self.drops,
                "stopped": self.stopped, "loss_sum": float(self.loss_sum), "loss_count": self.loss_count,
                "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor, self.best = float(state["factor"]), state["best"]
        self.counter, self.drops, self.stopped = int(state["counter"]), int(state["drops"]), bool(state["stopped"])
        self.loss_sum, self.loss_count = float(state["loss_sum"]), int(state["loss_count"])
        self.history = [float(v) for v in state["history"]]


DECAYS: Registry[Callable[[LRSchedule, int, float], float]] = Registry("schedule")


@DECAYS.register("cosine")
def _cosine(sched: LRSchedule, t: int, base_lr: float) -> float:
    """timm CosineLRScheduler (cycle_limit 1): lr_min + (max - lr_min)/2 (1 + cos(pi t / T)); lr_min from T on."""
    span = max(1, sched.total_units - (sched.warmup_steps if sched.cfg.warmup_prefix else 0))
    floor = min(sched.min_lr, base_lr)
    if t >= span:
        return floor
    return floor + 0.5 * (base_lr - floor) * (1.0 + math.cos(math.pi * t / span))


@DECAYS.register("step")
def _step(sched: LRSchedule, t: int, base_lr: float) -> float:
    return base_lr * sched.cfg.decay_rate ** (t // sched.decay_units)


@DECAYS.register("constant")
def _constant(sched: LRSchedule, t: int, base_lr: float) -> float:
    return base_lr


@DECAYS.register("plateau")
def _plateau(sched: LRSchedule, t: int, base_lr: float) -> float:
    assert sched.plateau is not None
    return base_lr * sched.plateau.factor


def build_schedule(optimizer: torch.optim.Optimizer, cfg: RecipeConfig, steps_per_epoch: int,
                   world_size: int = 1) -> LRSchedule:
    """The run's schedule with the originals' batch-scaled lrs (see effective_lrs)."""
    eff = effective_lrs(cfg, world_size)
    return LRSchedule(optimizer, cfg.schedule, steps_per_epoch, cfg.train.epochs, base_lr=eff.lr,
                      warmup_lr=eff.warmup_lr, min_lr=eff.min_lr)
