"""The recipe-specific parts of a training run, kept out of the loop in engine/train.py.

- global batch (`train.global_batch_size`): resolved into train.grad_accum before the loaders are
  built (one device reproduces GenImage's 2 GPUs x 64 for ResNet-50 by accumulating 2 x 64);
- Mixup / CutMix (engine/mixup.py) after the augmentation, with soft-target cross-entropy;
- model EMA (engine/ema.py) after every optimizer step, validated beside the model, checkpointed;
- CNNDetection's plateau schedule: the epoch's score (selection-set accuracy, else minus the mean
  training loss) goes to the schedule, which divides the lr or ends the run; metrics.jsonl says
  which score was used (`plateau_monitor`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genimage_fast.config import RecipeConfig
from genimage_fast.engine.ema import ModelEMA
from genimage_fast.engine.mixup import build_mixup, soft_target_cross_entropy
from genimage_fast.engine.optim import LRSchedule, effective_lrs, resolve_batch
from genimage_fast.errors import GenImageError


def check_recipe_keys(cfg: RecipeConfig) -> None:
    """The TRAIN-RECIPES keys' ranges, as one-line errors (before anything is built)."""
    a, sc, o = cfg.aug, cfg.schedule, cfg.optim
    rules = [(0.0 <= a.ema_decay < 1.0, f"aug.ema_decay must be in [0, 1) (0 = off), got {a.ema_decay}"),
             (a.repeated_aug >= 1, f"aug.repeated_aug must be >= 1, got {a.repeated_aug}"),
             (o.dampening >= 0.0, f"optim.dampening must be >= 0, got {o.dampening}"),
             (sc.lag >= 0 and sc.cooldown_epochs >= 0, "schedule.lag and schedule.cooldown_epochs must be >= 0"),
             (sc.plateau_patience >= 1 and 0.0 < sc.plateau_factor < 1.0,
              "schedule.plateau_patience must be >= 1 and schedule.plateau_factor in (0, 1)"),
             # the plateau judges each epoch on one score: selection accuracy needs a validation every epoch
             (not (sc.name == "plateau" and cfg.data.selection_fraction > 0 and cfg.train.val_every != 1),
              f"schedule plateau on the selection set needs train.val_every 1 (got {cfg.train.val_every}): "
              f"otherwise epochs without a validation would be judged on the training loss instead")]
    for ok, message in rules:
        if not ok:
            raise GenImageError(message)
    build_mixup(a, cfg.loss, 2, 0)  # Mixup's own checks (alphas, probabilities, loss 'ce')


def resolve_run_batch(cfg: RecipeConfig, world_size: int) -> None:
    """Set cfg.train.grad_accum from train.global_batch_size (a one-line error when they disagree)."""
    cfg.train.grad_accum = resolve_batch(cfg.train, world_size)[1]


def num_classes_of(net: nn.Module) -> int:
    """Classes of a logits model, for one-hot Mixup targets (2 for GenImage's detectors)."""
    head = getattr(getattr(net, "net", net), "get_classifier", None)
    out = getattr(head(), "out_features", None) if callable(head) else None
    return int(out) if out else 2


class RecipeParts:
    """Mixup, EMA and the plateau hooks of one run; each is inert when its recipe keys are off."""

    def __init__(self, cfg: RecipeConfig, net: nn.Module, schedule: LRSchedule, rank: int,
                 world_size: int) -> None:
        check_recipe_keys(cfg)
        self.cfg, self.schedule = cfg, schedule
        self.mixup = build_mixup(cfg.aug, cfg.loss, num_classes_of(net), cfg.train.seed)
        self.rank = rank
        self.ema = ModelEMA(net, cfg.aug.ema_decay) if cfg.aug.ema_decay > 0 else None
        self.effective = {**effective_lrs(cfg, world_size).as_dict(), "grad_accum": cfg.train.grad_accum,
                          "per_rank_batch": cfg.train.batch_size, "world_size": world_size}

    def loss(self, loss_fn: Any) -> Any:
        """Mixup trains on soft targets (DeiT main.py / Swin main.py: SoftTargetCrossEntropy)."""
        return soft_target_cross_entropy if self.mixup is not None else loss_fn

    def mix(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup/CutMix of one micro-batch; its draws are seeded by (seed, rank, step, micro-batch), so a
        resumed run repeats them with no state to checkpoint."""
        if self.mixup is None:
            return x, y
        self.mixup.reseed([self.cfg.train.seed, self.rank, step, micro])
        return self.mixup(x, y)

    def after_step(self, net: nn.Module, loss: torch.Tensor) -> None:
        """After each optimizer step: EMA update, and the plateau's running training loss."""
        if self.ema is not None:
            self.ema.update(net)
        self.schedule.record_loss(loss)

    def cap_steps(self, total_steps: int, step: int) -> int:
        """A plateau that already ended the run (e.g. resumed after the stop) trains no further."""
        plateau = self.schedule.plateau
        return step if plateau is not None and plateau.stopped else total_steps

    def end_epoch(self, trainer: Any) -> bool:
        """The plateau's epoch score; False = stop (CNNDetection: lr fell below plateau_min_lr)."""
        if self.schedule.plateau is None:
            return True
        s = trainer.state
        on_selection = bool(trainer.selection) and s.last_val_step == s.step and "mean" in s.last_val
        if on_selection:  # validate() already gathered every rank's predictions
            score = s.last_val["mean"]
        else:  # every rank must take the same decision: the ranks' mean training loss
            from genimage_fast.engine.distributed import all_reduce_mean

            score = -float(all_reduce_mean(self.schedule.plateau.epoch_mean_loss().to(trainer.device), trainer.ctx))
        keep_going = self.schedule.end_epoch(score)
        p = self.schedule.plateau
        trainer.metrics.write({"step": s.step, "epoch": s.epoch - 1, "plateau_monitor":
                               "selection_accuracy" if on_selection else "train_loss", "plateau_score": p.history[-1],
                               "lr_factor": p.factor, "plateau_stop": not keep_going})
        return keep_going

    def validate_ema(self, trainer: Any) -> None:
        """Validate the EMA weights with the model's own validation pass, logged as `<key>_ema`."""
        if self.ema is None:
            return
        saved = trainer.eval_forward
        trainer.eval_forward = self.ema.module
        try:
            acc = trainer.validate()
        finally:
            trainer.eval_forward = saved
        s = trainer.state
        trainer.metrics.write({"step": s.step, "epoch": s.epoch - 1 if s.batch == 0 and s.epoch > 0 else s.epoch,
                               f"{trainer.val_key}_ema": acc})

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self.ema is not None:
            state["model_ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        if self.ema is not None and "model_ema" in ckpt:
            self.ema.load_state_dict(ckpt["model_ema"])


def describe_recipe(cfg: RecipeConfig, model: nn.Module, world_size: int = 1) -> dict[str, Any]:
    """The effective training settings (`train --dry-run`): scaled lrs, batch, epochs with cooldown,
    transforms and regularisers, as the run will use them on `world_size` processes."""
    import copy as _copy

    from genimage_fast.engine.optim import param_groups

    check_recipe_keys(cfg)
    run = _copy.deepcopy(cfg)
    resolve_run_batch(run, world_size)
    eff = effective_lrs(run, world_size)
    o, sc, a, lo, tc = run.optim, run.schedule, run.aug, run.loss, run.train
    groups = param_groups(model, o.weight_decay, o.decay_all, o.no_weight_decay)
    no_decay = sum(p.numel() for g in groups if g["weight_decay"] == 0 for p in g["params"])
    total = sum(p.numel() for g in groups for p in g["params"])
    opt = {"name": o.name, "lr": o.lr, "effective_lr": eff.lr, "lr_scale": f"{o.lr_scale} (x{eff.scale:g})",
           "weight_decay": o.weight_decay, "no_weight_decay": "n/a (weight_decay 0)" if not o.weight_decay else
           "none (decay on all)" if o.decay_all else f"biases, 1-D tensors, {o.no_weight_decay or 'no keywords'}",
           "params_without_decay": f"{no_decay:,} of {total:,}"}
    opt.update({"momentum": o.momentum, "dampening": o.dampening, "nesterov": o.nesterov} if o.name == "sgd"
               else {"betas": o.betas, "eps": o.eps})
    sched: dict[str, Any] = {"name": sc.name, "steps": "per epoch" if sc.per_epoch else "per step"}
    if sc.name == "plateau":
        sched.update(patience=sc.plateau_patience, delta=[sc.plateau_delta, sc.plateau_delta_after],
                     factor=sc.plateau_factor, stop_under=sc.plateau_min_lr,
                     monitor="selection_accuracy" if run.data.selection_fraction > 0 else "train_loss")
    else:
        sched.update(warmup_epochs=sc.warmup_epochs, warmup_lr=eff.warmup_lr, min_lr=eff.min_lr,
                     warmup_prefix=sc.warmup_prefix, lag=sc.lag)
    regs = {"drop_path_rate": run.model.kwargs.get("drop_path_rate", 0.0), "randaugment": a.randaugment or "off",
            "random_erase": a.random_erase, "label_smoothing": lo.label_smoothing,
            "mixup": a.mixup, "cutmix": a.cutmix, "mixup_prob": a.mixup_prob, "mixup_switch_prob": a.mixup_switch_prob,
            "repeated_aug": a.repeated_aug, "ema_decay": a.ema_decay or "off", "hflip": a.hflip,
            "blur_prob": a.blur_prob, "jpeg_prob": a.jpeg_prob, "loss": lo.name, "clip_grad": tc.clip_grad}
    if lo.name == "jsd_ce":
        regs["jsd"] = f"{lo.jsd_splits} splits, alpha {lo.jsd_alpha}"
    return {
        "batch": {"per_rank": tc.batch_size, "world_size": world_size, "grad_accum": tc.grad_accum,
                  "global": eff.global_batch},
        "epochs": {"total": tc.epochs, "schedule_cycle": tc.epochs - sc.cooldown_epochs,
                   "cooldown": sc.cooldown_epochs},
        "optimizer": opt,
        "schedule": sched,
        "transforms": {"train": run.data.train_transform, "eval": getattr(run.data, "eval_transform", None),
                       "image_size": run.data.image_size, "resize_size": run.data.resize_size},
        "init": run.model.pretrained or "from scratch",
        "regularisers": regs,
    }
