"""`genimage-fast train`: loader -> on-device augmentation -> model -> loss -> optimizer, one loop.

The hot path stays free of host syncs: losses accumulate on the device and are read only every
`train.log_every` steps (which is also where NaN/inf and, under DDP, stop requests are checked).
A resumed run restores model, optimizer, schedule, scaler, every RNG and the loader position, so on
the CPU it reproduces the uninterrupted run's losses.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from genimage_fast.config import RecipeConfig, config_to_dict, dump_config, load_config
from genimage_fast.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint, unwrap_model
from genimage_fast.engine.distributed import (
    DistContext,
    all_reduce_mean,
    any_rank,
    barrier,
    cleanup_distributed,
    gather_objects,
    setup_distributed,
)
from genimage_fast.engine.metrics import MetricsLog, accuracy_by_generator
from genimage_fast.engine.optim import build_optimizer, build_schedule
from genimage_fast.engine.precision import Precision, build_precision, configure_matmul_precision
from genimage_fast.engine.recipe_parts import RecipeParts, describe_recipe, resolve_run_batch
from genimage_fast.engine.resume import check_geometry, run_geometry, seed_rank_streams
from genimage_fast.engine.rundir import RunDir
from genimage_fast.engine.selection import selection_for_run, selection_label
from genimage_fast.engine.signals import StopOnSignal, TrainingInterrupted
from genimage_fast.errors import GenImageError
from genimage_fast.generators import parse_generators
from genimage_fast.models.common import count_parameters
from genimage_fast.models.pretrained import pretrained_record

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Set-up helpers


def build_model(cfg: RecipeConfig) -> nn.Module:
    from genimage_fast.models import create_model

    return create_model(cfg.model.name, pretrained=cfg.model.pretrained or None, **cfg.model.kwargs)


def _split_size(records: str | Path, split: str) -> int:
    """Images in a record set's split (0 when the split is absent); a bad path is a GenImageError."""
    from genimage_fast.records import open_records

    record_set = open_records(records)
    return len(record_set.split(split)) if split in record_set.splits else 0


def default_run_dir(cfg: RecipeConfig) -> Path:
    return Path("runs") / (cfg.recipe or cfg.model.name)


def _to_device_input(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 [N,3,H,W] -> float [0,1] in the model's memory format (eval path: no augmentation)."""
    x = images.float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _configure_backends(device: torch.device, precision: str = "bf16") -> None:
    """Fast kernels for fixed-shape training on GPUs: cuDNN autotuning; TF32 for fp32 matmuls only in
    fp32 runs (engine/precision.py: bf16/fp16 runs gain nothing from it and keep fp32 math fp32)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        configure_matmul_precision(precision, device)


def _tensorboard(path: Path, enabled: bool) -> Any:
    """A SummaryWriter when tensorboard is installed (optional dependency), else None."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(path))


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()))


# ----------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainState:
    """Where training stands; everything here goes into the checkpoint."""

    epoch: int = 0  # the epoch being trained (== epochs when done)
    step: int = 0  # optimizer steps taken in total
    batch: int = 0  # loader batches consumed in `epoch` (the resume position)
    best_metric: float = -1.0  # best mean validation accuracy so far
    last_val: dict[str, float] = field(default_factory=dict)
    last_val_step: int = -1


class _Window:
    """Loss and throughput since the last log line; losses stay on the device until read."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.total_images, self.total_seconds = 0, 0.0
        self.first: tuple[int, float] | None = None  # the first window (compile, autotune, warm-up)
        self._reset()

    def _reset(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.steps, self.images = 0, 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.loss += loss
        self.steps += 1
        self.images += images

    def close(self) -> float:
        """End the window (after a host sync); returns its images per second."""
        elapsed = time.perf_counter() - self.start
        self.total_images += self.images
        self.total_seconds += elapsed
        if self.first is None:
            self.first = (self.images, elapsed)
        ips = self.images / elapsed if elapsed > 0 else 0.0
        self._reset()
        return ips

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside does not count as training time."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - began

    def overall_images_per_second(self) -> float:
        """Steady state (DESIGN §4.5): the first log window, with compilation and autotuning, is left
        out when there is more than one; a run of one window reports that window."""
        images, seconds = self.total_images, self.total_seconds
        if self.first is not None and images > self.first[0] and seconds > self.first[1]:
            images, seconds = images - self.first[0], seconds - self.first[1]
        return images / seconds if seconds > 0 else 0.0

    def state_dict(self) -> dict[str, Any]:
        """The open window (checkpointed, so a stop between log steps loses no logged loss)."""
        return {"loss": self.loss.detach().cpu().clone(), "steps": self.steps, "images": self.images}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.loss = state["loss"].to(self.device)
            self.steps, self.images = int(state["steps"]), int(state["images"])


class Trainer:
    """One training run: builds everything from the config, then `fit()`."""

    def __init__(self, cfg: RecipeConfig, data: str | Path, val: str | Path | None, run_dir: Path | None,
                 ctx: DistContext) -> None:
        """run_dir None: write nothing (benchmarks drive `train_step` directly)."""
        from genimage_fast.engine.augment import build_train_augment
        from genimage_fast.engine.losses import build_loss
        from genimage_fast.loaders import build_loader
        from genimage_fast.models import get_model_spec

        self.cfg, self.ctx, self.device = cfg, ctx, ctx.device
        self.run = RunDir(run_dir if run_dir is not None else Path("."))
        tc = cfg.train
        _configure_backends(self.device, tc.precision)
        torch.manual_seed(tc.seed)  # same initial weights on every rank (DDP also broadcasts them)

        train_size = _split_size(data, "train")
        if train_size == 0:
            raise GenImageError(f"records {data} have no images in their 'train' split")
        val_source = val if val is not None else data
        self.has_val = _split_size(val_source, "val") > 0
        if val is not None and not self.has_val:
            raise GenImageError(f"validation records {val} have no images in their 'val' split")
        if not self.has_val and not cfg.data.selection_fraction:
            log.warning("no 'val' split in %s: training without validation", val_source)

        resolve_run_batch(cfg, ctx.world_size)  # train.global_batch_size -> train.grad_accum
        common = dict(backend=cfg.data.backend, image_size=cfg.data.image_size, device=str(self.device),
                      num_workers=cfg.data.num_workers, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size,
                      fast_jpeg_decode=cfg.data.fast_jpeg_decode)
        # data.selection_fraction > 0: best.pt is picked on a held-out part of train, never on val
        self.selection = selection_for_run(data, cfg.data.selection_fraction, tc.seed, cfg.data.generators)
        self.val_key = "selection_accuracy" if self.selection else "val_accuracy"
        self.loader = build_loader(data, batch_size=tc.batch_size, train=True, split="train",
                                   generators=parse_generators(cfg.data.generators),
                                   train_transform=cfg.data.train_transform, resize_size=cfg.data.resize_size,
                                   transform_options=cfg.data.transform_options or None,  # the original's options
                                   hflip=cfg.aug.hflip, subset=self.selection.train if self.selection else None,
                                   repeated_aug=cfg.aug.repeated_aug, **common)
        if self.selection:
            self.has_val = True
            self.val_loader = build_loader(data, batch_size=tc.val_batch_size or tc.batch_size, train=False,
                                           split="train", subset=self.selection.selection,
                                           resize_size=cfg.data.resize_size, eval_transform=cfg.data.eval_transform,
                                           **common)
        else:
            self.val_loader = build_loader(val_source, batch_size=tc.val_batch_size or tc.batch_size, train=False,
                                           split="val", generators=parse_generators(cfg.data.val_generators),
                                           resize_size=cfg.data.resize_size, eval_transform=cfg.data.eval_transform,
                                           **common) if self.has_val else None
        self.steps_per_epoch = len(self.loader) // tc.grad_accum
        if self.steps_per_epoch == 0:
            raise GenImageError(f"the train split ({train_size} images over {ctx.world_size} process(es)) is "
                                f"smaller than one step of train.batch_size x train.grad_accum = "
                                f"{tc.batch_size * tc.grad_accum}")
        self.total_steps = self.steps_per_epoch * tc.epochs
        if tc.max_steps:
            self.total_steps = min(self.total_steps, tc.max_steps)

        self.spec = get_model_spec(cfg.model.name)
        net = build_model(cfg).to(self.device)
        if tc.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net  # the plain module (state dicts, parameter groups)
        self.optimizer = build_optimizer(net, cfg.optim, self.device)
        self.schedule = build_schedule(self.optimizer, cfg, self.steps_per_epoch, ctx.world_size)  # scaled lrs
        self.precision: Precision = build_precision(tc.precision, self.device)
        forward = torch.compile(net) if tc.compile else net
        self.eval_forward: Callable[[torch.Tensor], torch.Tensor] = forward
        if ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = DistributedDataParallel(forward, device_ids=ids)
        self.model = forward
        self.loss_fn = build_loss(cfg.loss)
        self.augment = build_train_augment(cfg.aug, cfg.loss)
        self.parts = RecipeParts(cfg, net, self.schedule, ctx.rank, ctx.world_size)  # mixup, EMA, plateau
        self.loss_fn = self.parts.loss(self.loss_fn)
        # The augmentation draws from its own CPU generator (checkpointed with the others): host-side
        # draws, so the step never reads a device value back (issue #17; engine/augment.py).
        self.aug_rng = torch.Generator().manual_seed(tc.seed * 1_000_003 + ctx.rank)
        seed_rank_streams(tc.seed, ctx.rank)  # dropout / drop-path: own stream per rank, after the init
        self.geometry = run_geometry(cfg, ctx.world_size, data)
        self.window = _Window(self.device)  # the open logging window (checkpointed)
        self.state = TrainState()
        self.metrics = MetricsLog(self.run.metrics, enabled=ctx.is_main and run_dir is not None)

    # -- checkpoints ------------------------------------------------------------------------------

    def _checkpoint(self) -> dict[str, Any]:
        # collective: every rank's own RNG states and open log window, gathered into rank 0's file
        ranks = gather_objects({"rng": capture_rng({"augment": self.aug_rng}),
                                "log_window": self.window.state_dict()}, self.ctx)
        rng = [r["rng"] for r in ranks]
        s = self.state
        return {
            "model": unwrap_model(self.net).state_dict(),
            "config": config_to_dict(self.cfg),
            "epoch": s.epoch,
            "step": s.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.precision.state_dict(),
            "rng": rng[0],
            "rng_by_rank": rng,
            "loader": {"epoch": s.epoch, "batch": s.batch},
            "best_metric": s.best_metric,
            "val_accuracy": s.last_val,
            "world_size": self.ctx.world_size,
            "geometry": self.geometry,
            "log_window_by_rank": [r["log_window"] for r in ranks],
            **self.parts.state_dict(),  # model_ema
        }

    def save(self, best: bool = False) -> None:
        """last.pt (and best.pt) from rank 0; every rank joins the RNG gather first."""
        state = self._checkpoint()
        if self.ctx.is_main:
            save_checkpoint(self.run.last, state)
            if best:
                save_checkpoint(self.run.best, state)
        barrier(self.ctx)

    def resume(self) -> None:
        ckpt = load_checkpoint(self.run.last, map_location=self.device)
        saved = ckpt.get("config", {})
        for section, key in (("model", "name"), ("optim", "name")):  # state that cannot carry over
            old, new = saved.get(section, {}).get(key), getattr(getattr(self.cfg, section), key)
            if old is not None and old != new:
                raise GenImageError(f"cannot resume: {self.run.last} was trained with {section}.{key}={old}, "
                                    f"the config now says {new}")
        check_geometry(ckpt.get("geometry") or {"world_size": ckpt.get("world_size")}, self.geometry, self.run.last)
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        self.precision.load_state_dict(ckpt["scaler"])
        self.parts.load_state_dict(ckpt)
        by_rank = ckpt.get("rng_by_rank") or [ckpt["rng"]]  # same world size: checked above
        restore_rng(by_rank[self.ctx.rank], {"augment": self.aug_rng})
        self.window.load_state_dict((ckpt.get("log_window_by_rank") or [None] * (self.ctx.rank + 1))[self.ctx.rank])
        self.state = TrainState(epoch=ckpt["epoch"], step=ckpt["step"], batch=ckpt["loader"]["batch"],
                                best_metric=ckpt["best_metric"], last_val=dict(ckpt.get("val_accuracy") or {}),
                                last_val_step=ckpt["step"] if ckpt.get("val_accuracy") else -1)
        self.metrics.truncate_after(self.state.step)

    # -- validation ---------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Accuracy per generator over the whole val split (gathered from every rank); RNG-neutral."""
        from genimage_fast.models import fake_probability

        assert self.val_loader is not None
        rng = capture_rng({"augment": self.aug_rng})
        self.net.eval()
        parts: list[tuple[torch.Tensor, ...]] = []
        self.val_loader.set_epoch(0)
        for batch in self.val_loader:
            batch = batch.to(self.device, non_blocking=True)
            with self.precision.autocast():
                out = self.eval_forward(_to_device_input(batch.images, self.cfg.train.channels_last))
            parts.append((batch.indices, fake_probability(out, self.spec.output), batch.labels, batch.generators))
        self.net.train()
        restore_rng(rng, {"augment": self.aug_rng})
        local = [torch.cat(col).cpu() for col in zip(*parts, strict=True)] if parts else []
        merged: dict[int, tuple[float, int, int]] = {}
        for shard in gather_objects(local, self.ctx):  # ranks may pad with repeats: de-duplicate by index
            if shard:
                for i, p, y, g in zip(*(t.tolist() for t in shard), strict=True):
                    merged[i] = (p, y, g)
        scores, labels, gens = zip(*merged.values(), strict=True) if merged else ((), (), ())
        return accuracy_by_generator(list(scores), list(labels), list(gens))

    # -- training -----------------------------------------------------------------------------------

    def _micro_batches(self) -> Iterator[Any]:
        self.loader.set_epoch(self.state.epoch, start_batch=self.state.batch)
        yield from self.loader

    def train_step(self, batches: Sequence[Any]) -> tuple[torch.Tensor, int]:
        """One optimizer step over grad_accum micro-batches; returns (summed loss on device, images)."""
        accum = len(batches)
        total = torch.zeros((), device=self.device)
        images = 0
        for i, batch in enumerate(batches):
            batch = batch.to(self.device, non_blocking=True)
            x, y = self.augment(batch.images, batch.labels, self.aug_rng)
            x, y = self.parts.mix(x, y, self.state.step, i)
            if self.cfg.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            sync = i == accum - 1 or not self.ctx.distributed
            # DDP: skip the gradient all-reduce on all but the last micro-batch of an accumulation.
            context = contextlib.nullcontext() if sync else self.model.no_sync()
            with context:
                with self.precision.autocast():
                    loss = self.loss_fn(self.model(x), y)
                self.precision.backward(loss / accum)
            total += loss.detach().float()
            images += len(batch)
        clip = self.cfg.train.clip_grad
        before = (lambda: nn.utils.clip_grad_norm_(self.net.parameters(), clip)) if clip > 0 else None
        self.precision.step(self.optimizer, before)
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.parts.after_step(self.net, total / accum)
        return total / accum, images

    def fit(self, stop: StopOnSignal) -> dict[str, Any]:
        tc, s, ctx = self.cfg.train, self.state, self.ctx
        batches_per_epoch = self.steps_per_epoch * tc.grad_accum  # a trailing partial accumulation is dropped
        tb = _tensorboard(self.run.root / "tensorboard", ctx.is_main)
        bar = _progress(self.total_steps, s.step, ctx.is_main)
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        window = self.window
        window.start = time.perf_counter()  # a resumed window keeps its losses, not the set-up time
        saved = False
        self.total_steps = self.parts.cap_steps(self.total_steps, s.step)  # a plateau already ended the run
        while s.step < self.total_steps and s.epoch < tc.epochs:
            pending: list[Any] = []
            for batch in self._micro_batches():
                pending.append(batch)
                if len(pending) < tc.grad_accum:
                    continue
                lr = self.schedule.get_last_lr()[0]  # the lr this step uses
                loss, images = self.train_step(pending)
                pending = []
                s.step += 1
                s.batch += tc.grad_accum
                window.add(loss, images * ctx.world_size)
                bar.update(1)
                at_log = s.step % tc.log_every == 0 or s.step == self.total_steps
                if at_log:
                    self._log(window, lr, tb, bar)
                # Under DDP every rank must stop at the same step, so a stop is only agreed at log points.
                if stop.check(s.step) if not ctx.distributed else (at_log and any_rank(stop.check(s.step), ctx)):
                    self._guard_finite(window.loss)
                    self.save()
                    bar.close()
                    why = f"by signal {stop.signum}" if stop.signum else (
                        "as asked (stop_at_step)" if stop.check(s.step) else "by a signal on another rank")
                    raise TrainingInterrupted(
                        f"stopped {why} at step {s.step}; checkpoint saved "
                        f"to {self.run.last}; continue with --resume", stop.signum or 15)
                if s.step >= self.total_steps or s.batch >= batches_per_epoch:
                    break
            else:  # the loader ran dry (possibly early): the epoch is over either way
                s.batch = batches_per_epoch
            epoch_done = s.batch >= batches_per_epoch
            if epoch_done:
                s.epoch, s.batch = s.epoch + 1, 0
            self._guard_finite(window.loss)
            finished = s.step >= self.total_steps or s.epoch >= tc.epochs
            periodic = epoch_done and tc.val_every > 0 and s.epoch % tc.val_every == 0
            with window.paused():  # validation and checkpoints are not training time
                improved = self._validate_and_log(tb) if self.has_val and (finished or periodic) else False
                if epoch_done and not self.parts.end_epoch(self):  # CNNDetection: lr fell below its floor
                    self.total_steps = s.step
                self.save(best=improved)
            saved = True
        with window.paused():
            if self.has_val and s.last_val_step != s.step:  # e.g. resumed from the final checkpoint
                self._validate_and_log(tb)
                saved = False
            if not saved:  # nothing left to train (epochs=0, or resumed at the end): still leave a checkpoint
                self.save()
        bar.close()
        if tb is not None:
            tb.close()
        return {
            "recipe": self.cfg.recipe,
            "model": self.cfg.model.name,
            "epochs": round(s.step / self.steps_per_epoch, 4),
            "steps": s.step,
            "world_size": ctx.world_size,
            "backend": self.loader.name,  # which loader ran (auto never picks silently)
            "images_per_second": window.overall_images_per_second(),
            "val_accuracy": {} if self.selection else s.last_val,  # a selection run never scores val
            **({"selection_accuracy": s.last_val} if self.selection else {}),
            "selection": self.selection.describe() if self.selection else selection_label(self.has_val),
            "wall_seconds": 0.0,  # filled in by train()
        }

    def _log(self, window: _Window, lr: float, tb: Any, bar: Any) -> None:
        """One metrics line for the steps since the last one (the loop's only host sync)."""
        s = self.state
        mean_loss = float(all_reduce_mean(window.loss / max(1, window.steps), self.ctx).item())
        ips = window.close()
        if not math.isfinite(mean_loss):
            raise GenImageError(self._nan_message(mean_loss))
        record = {"step": s.step, "epoch": s.epoch, "loss": mean_loss, "lr": lr, "images_per_second": ips}
        self.metrics.write(record)
        if tb is not None:
            for key in ("loss", "lr", "images_per_second"):
                tb.add_scalar(f"train/{key}", record[key], s.step)
        bar.set_postfix(loss=f"{mean_loss:.4f}", img_s=f"{ips:.0f}")

    def _validate_and_log(self, tb: Any) -> bool:
        """Validate, log it, remember the best; True when the mean accuracy improved."""
        s = self.state
        acc = self.validate()
        s.last_val, s.last_val_step = acc, s.step
        trained_epoch = s.epoch - 1 if s.batch == 0 and s.epoch > 0 else s.epoch  # as in the step lines
        self.metrics.write({"step": s.step, "epoch": trained_epoch, self.val_key: acc})
        self.parts.validate_ema(self)
        if tb is not None:
            for key, value in acc.items():
                tb.add_scalar(f"{self.val_key}/{key}", value, s.step)
        improved = acc.get("mean", -1.0) > s.best_metric
        if improved:
            s.best_metric = acc["mean"]
        return improved

    def _guard_finite(self, window_loss: torch.Tensor) -> None:
        """Never checkpoint a diverged model: check the unlogged steps' losses before saving."""
        value = float(all_reduce_mean(window_loss, self.ctx).item())
        if not math.isfinite(value):
            raise GenImageError(self._nan_message(value))

    def _nan_message(self, value: float) -> str:
        kept = f"the last good checkpoint {self.run.last} is kept" if self.run.last.exists() else "no checkpoint saved"
        return (f"loss became {value} by step {self.state.step} (epoch {self.state.epoch}); stopped, {kept}. "
                f"Lower optim.lr, use train.precision=fp32/bf16 or set train.clip_grad")


# ----------------------------------------------------------------------------------------------
# Entry points


def _dry_run(cfg: RecipeConfig) -> dict[str, Any]:
    model = build_model(cfg)
    return {"config": config_to_dict(cfg), "config_yaml": dump_config(cfg),
            "parameters": count_parameters(model, trainable_only=False),
            "pretrained": pretrained_record(model),  # init file: path, sha256, format (models/pretrained.py)
            "effective": describe_recipe(cfg, model, int(os.environ.get("WORLD_SIZE", "1")))}  # scaled lrs etc.


def train(recipe: str | Path, data: str | Path | None, val: str | Path | None = None, out: str | Path | None = None,
          overrides: Sequence[str] = (), resume: bool = False, dry_run: bool = False,
          stop_at_step: int | None = None) -> dict[str, Any]:
    """Train from a recipe; returns the summary dict (also written to RUN/summary.json by rank 0).

    dry_run: resolve the config and build the model only; returns {"config", "config_yaml", "parameters"}.
    stop_at_step: stop as SIGTERM would after this many steps (checkpoint, then TrainingInterrupted).
    """
    start = time.perf_counter()
    cfg = load_config(recipe, tuple(overrides))
    if dry_run:
        return _dry_run(cfg)
    if not data:
        raise GenImageError("--data RECORDS is required (a record set made by 'genimage-fast convert')")
    run_dir = Path(out) if out else default_run_dir(cfg)
    run = RunDir(run_dir)
    if resume and not run.last.is_file():
        raise GenImageError(f"nothing to resume: no checkpoint at {run.last}")
    ctx = setup_distributed(cfg.train.device)
    try:
        trainer = Trainer(cfg, data, val, run_dir, ctx)
        if resume:
            trainer.resume()
        elif ctx.is_main:  # a fresh run replaces an old run's history in the same folder
            for stale in (run.metrics, run.summary, run.best):
                stale.unlink(missing_ok=True)
        if ctx.is_main:
            run.write_config(cfg, {"data": str(data), "val": str(val) if val else None,
                                   "world_size": ctx.world_size, "device": str(ctx.device),
                                   "torch": torch.__version__, "resumed_from_step": trainer.state.step,
                                   "backend": trainer.loader.name,
                                   "val_backend": trainer.val_loader.name if trainer.val_loader else None,
                                   "effective": trainer.parts.effective,  # scaled lrs, global batch
                                   "pretrained": pretrained_record(trainer.net)})  # init file + sha256
        barrier(ctx)
        with StopOnSignal(stop_at_step) as stop:
            summary = trainer.fit(stop)
        summary["wall_seconds"] = time.perf_counter() - start
        if ctx.is_main:
            run.write_summary(summary)
        return summary
    finally:
        cleanup_distributed()


def train_command(recipe: str, data: str | None, val: str | None, out: str | None, overrides: list[str],
                  resume: bool, dry_run: bool) -> int:
    """CLI entry: prints the dry-run config, or a one-line result; a signal stop exits 128 + signum."""
    try:
        result = train(recipe, data, val=val, out=out, overrides=overrides, resume=resume, dry_run=dry_run)
    except TrainingInterrupted as exc:
        sys.stderr.write(f"genimage-fast train: {exc}\n")
        return 128 + exc.signum
    if dry_run:
        sys.stdout.write(f"{result['config_yaml']}# parameters: {result['parameters']:,}\n")
        init = result.get("pretrained")  # model.pretrained: the file, its sha256 and how it was read
        sys.stdout.write(f"# init: {init['path']} (sha256 {init['sha256']}, {init['format']})\n" if init
                         else "# init: from scratch\n")
        effective = yaml.safe_dump({"effective": result["effective"]}, sort_keys=False,  # what the run will use
                                   default_flow_style=None)
        sys.stdout.write("".join(f"# {line}\n" for line in effective.splitlines()))
        return 0
    if int(os.environ.get("RANK", "0")) == 0:
        acc = (result.get("selection_accuracy") or result["val_accuracy"]).get("mean")
        which = "selection" if result.get("selection_accuracy") else "val"
        acc_text = f", mean {which} accuracy {acc:.4f}" if acc is not None else ""
        sys.stdout.write(f"trained {result['steps']} steps ({result['epochs']} epochs) at "
                         f"{result['images_per_second']:.1f} images/s{acc_text}; run: "
                         f"{Path(out) if out else default_run_dir(load_config(recipe, tuple(overrides)))}\n")
    return 0
