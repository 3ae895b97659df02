"""Optimizers by name and a per-step learning-rate schedule (warm-up, then cosine / step / constant).

The schedule is a function of the optimizer step alone, so a resumed run lands on exactly the same
learning rate; its state is one integer and loads with `weights_only=True`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from genimage_fast.config import OptimConfig, ScheduleConfig
from genimage_fast.registry import Registry

OPTIMIZERS: Registry[Callable[[list[dict[str, Any]], OptimConfig, dict[str, Any]], torch.optim.Optimizer]] = \
    Registry("optimizer")


@OPTIMIZERS.register("sgd")
def _sgd(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           **extra)


@OPTIMIZERS.register("adam")
def _adam(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)


@OPTIMIZERS.register("adamw")
def _adamw(groups: list[dict[str, Any]], cfg: OptimConfig, extra: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **extra)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights only: biases and norm scales (1-D tensors) get none, as timm does."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """The named optimizer; fused kernels on CUDA (one launch for all parameters) when cfg.fused."""
    extra = {"fused": True} if cfg.fused and device.type == "cuda" else {}
    return OPTIMIZERS.get(cfg.name)(param_groups(model, cfg.weight_decay), cfg, extra)


class LRSchedule:
    """Sets every param group's lr from the step number: linear warm-up, then the named decay."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int,
                 epochs: int, base_lr: float | None = None) -> None:
        """base_lr: the peak lr (the recipe's optim.lr); None = each group's current lr. Passing it
        explicitly lets a resumed run take a new lr although the optimizer state carries the old one."""
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [group["lr"] if base_lr is None else base_lr for group in optimizer.param_groups]
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = max(1, self.steps_per_epoch * epochs)
        self.warmup_steps = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        self.step_num = 0
        self._decay = DECAYS.get(cfg.name)
        self._apply()

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr at `step` (0-based: the step about to be taken) for a group whose peak is base_lr."""
        if step < self.warmup_steps:
            start = min(self.cfg.warmup_lr, base_lr)
            return start + (base_lr - start) * step / self.warmup_steps
        return self._decay(self, step - self.warmup_steps, base_lr)

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(self.step_num, base)

    def step(self) -> None:
        self.step_num += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"step_num": self.step_num}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_num = int(state["step_num"])
        self._apply()


DECAYS: Registry[Callable[[LRSchedule, int, float], float]] = Registry("schedule")


@DECAYS.register("cosine")
def _cosine(sched: LRSchedule, t: int, base_lr: float) -> float:
    span = max(1, sched.total_steps - sched.warmup_steps)
    floor = min(sched.cfg.min_lr, base_lr)
    return floor + 0.5 * (base_lr - floor) * (1.0 + math.cos(math.pi * min(t, span) / span))


@DECAYS.register("step")
def _step(sched: LRSchedule, t: int, base_lr: float) -> float:
    every = max(1, int(round(sched.cfg.decay_epochs * sched.steps_per_epoch)))
    return base_lr * sched.cfg.decay_rate ** (t // every)


@DECAYS.register("constant")
def _constant(sched: LRSchedule, t: int, base_lr: float) -> float:
    return base_lr
