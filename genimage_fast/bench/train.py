"""`genimage-fast bench train`: steady-state training images/s with the real loader in the loop vs
with synthetic batches already on the device, in the same run (DESIGN §6).

Both rows run the engine's own training step (augmentation, autocast, backward, optimizer). The
synthetic row reuses one real batch that already sits on the device, so it measures the model
alone; if the loader row is much slower, the loader is the bottleneck. A third row times the loader
by itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from genimage_fast.bench.common import Measurement, report
from genimage_fast.config import load_config
from genimage_fast.devices import resolve_device
from genimage_fast.engine.distributed import DistContext
from genimage_fast.engine.syncs import count_syncs
from genimage_fast.engine.train import Trainer


def _endless(trainer: Trainer) -> Iterator[Any]:
    """Loader batches across as many epochs as needed (demo-sized splits end quickly)."""
    for epoch in itertools.count():
        trainer.loader.set_epoch(epoch)
        yield from trainer.loader


def _timed(step: Callable[[], int], steps: int, warmup: int, sync: Callable[[], None]) -> tuple[int, float]:
    """(images, seconds) over `steps` calls after `warmup` untimed ones; step() returns its images."""
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    images = sum(step() for _ in range(steps))
    sync()
    return images, time.perf_counter() - start


def bench_train(recipe: str, data: str, steps: int = 20, warmup: int = 5, overrides: tuple[str, ...] = (),
                device: str = "auto") -> tuple[list[Measurement], dict[str, Any]]:
    cfg = load_config(recipe, tuple(overrides))
    if device != "auto":
        cfg.train.device = device
    dev = resolve_device(cfg.train.device)
    trainer = Trainer(cfg, data, None, None, DistContext(rank=0, world_size=1, local_rank=0, device=dev))
    accum = cfg.train.grad_accum
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    batches = _endless(trainer)
    fixed = [next(batches).to(dev) for _ in range(accum)]

    def synthetic_step() -> int:
        return trainer.train_step(fixed)[1]

    def loader_step() -> int:
        return trainer.train_step([next(batches) for _ in range(accum)])[1]

    def loader_only() -> int:
        return sum(len(next(batches)) for _ in range(accum))

    rows = []
    start = time.perf_counter()  # the first step pays torch.compile / cuDNN autotuning: reported apart
    synthetic_step()
    sync()
    first_step = time.perf_counter() - start
    for name, fn, baseline in (("train/synthetic", synthetic_step, True), ("train/loader", loader_step, False),
                               ("loader only", loader_only, False)):
        images, seconds = _timed(fn, steps, warmup, sync)
        rows.append(Measurement(name, images, seconds, baseline=baseline))
    # Host syncs in one (steady-state) step, counted by engine.syncs.SyncCounter on any device; the
    # unfused CPU Adam's step-counter reads show up here although they are host values (issue #17).
    syncs = count_syncs(synthetic_step).as_dict()
    settings = {"recipe": cfg.recipe, "model": cfg.model.name, "image_size": cfg.data.image_size,
                "batch_size": cfg.train.batch_size, "grad_accum": accum, "precision": cfg.train.precision,
                "channels_last": cfg.train.channels_last, "compile": cfg.train.compile,
                "backend": type(trainer.loader).__name__, "decoder": getattr(trainer.loader, "decoder", None),
                "num_workers": cfg.data.num_workers,
                "device": str(dev), "steps": steps, "warmup": warmup, "data": str(data),
                "first_step_seconds": round(first_step, 3), "host_syncs_per_step": syncs}
    return rows, settings


def bench_train_command(recipe: str, data: str, steps: int, warmup: int, overrides: list[str],
                        json_path: str | None, device: str) -> int:
    rows, settings = bench_train(recipe, data, steps=steps, warmup=warmup, overrides=tuple(overrides), device=device)
    report(f"training throughput ({settings['model']}, {settings['precision']}, {settings['device']})",
           rows, json_path, settings)
    return 0
