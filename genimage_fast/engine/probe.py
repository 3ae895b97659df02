"""A linear probe trained from a feature cache (`engine/features.py`): UnivFD's training in seconds.

UniversalFakeDetect trains only `fc` (networks/trainer.py: AdamW(lr, betas=(beta1, 0.999),
weight_decay), BCEWithLogitsLoss, batch 256, fc ~ N(0, 0.02)) over frozen CLIP features. From a
cache the features are those of the eval-transformed images: the per-epoch blur/JPEG/crop/flip
augmentation of its data/datasets.py cannot be cached, so a probe trained here sees each image's
fixed view (recorded as `probe_from_cache` in run.json). The run directory is a normal one
(config.yaml, run.json, metrics.jsonl, checkpoints/last.pt, summary.json), so `genimage-fast eval RUN`
scores it, degraded inputs included (the whole model runs on them; nothing comes from the cache).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimage_fast.atomic import atomic_path, atomic_write_text
from genimage_fast.config import config_from_dict, config_to_dict
from genimage_fast.engine.features import open_cache
from genimage_fast.engine.metrics import accuracy_by_generator
from genimage_fast.engine.rundir import RunDir
from genimage_fast.errors import GenImageError

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def _probe_logits(fc: torch.nn.Linear, feats: np.ndarray, batch: int = 4096) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fc(torch.from_numpy(np.array(feats[i:i + batch]))) for i in range(0, len(feats), batch)])


def train_probe(cache_dir: str | Path, out: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Train the cache's model's probe (`fc`) on its train features; validate on val; write a run."""
    from genimage_fast.models import create_model

    cache = open_cache(cache_dir)
    cfg = config_from_dict(cache.meta["config"])
    torch.manual_seed(cfg.train.seed)  # a random (file-less) backbone is rebuilt from this seed, as cached
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    if not isinstance(getattr(model, "fc", None), torch.nn.Linear):
        raise GenImageError(f"model {cfg.model.name!r} has no linear probe `fc` to train from features")
    opt_cls = _OPTIMIZERS.get(cfg.optim.name)
    if opt_cls is None:
        raise GenImageError(f"probe training supports optim.name adamw or adam (got {cfg.optim.name!r})")
    feats, labels, _ = cache.split("train")
    x_all = torch.from_numpy(np.array(feats, dtype=np.float32))
    y_all = torch.from_numpy(labels.astype(np.float32))
    fc = model.fc
    optimizer = opt_cls(fc.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                        weight_decay=cfg.optim.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(cfg.train.seed)
    run = RunDir(out)
    run.root.mkdir(parents=True, exist_ok=True)
    run.write_config(cfg, {"probe_from_cache": str(Path(cache_dir).resolve()), "cache_key": cache.meta["key"],
                           "data": str(data) if data else cache.meta.get("records"), "backend": "feature-cache"})
    lines, step, start = [], 0, time.perf_counter()
    bs = cfg.train.batch_size
    for epoch in range(cfg.train.epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            loss = loss_fn(fc(x_all[idx]).squeeze(1), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if cfg.train.max_steps and step >= cfg.train.max_steps:
                break
        lines.append({"step": step, "epoch": epoch + 1, "loss": float(loss.detach()), "lr": cfg.optim.lr,
                      "images_per_second": 0.0})
        if cfg.train.max_steps and step >= cfg.train.max_steps:
            break
    wall = time.perf_counter() - start
    val_acc: dict[str, float] = {}
    if "val" in cache.meta.get("splits", {}):
        vf, vl, vg = cache.split("val")
        scores = _probe_logits(fc, vf).squeeze(1).sigmoid().numpy()
        val_acc = accuracy_by_generator(scores, vl, vg)
        if lines:
            lines[-1]["val_accuracy"] = val_acc
    atomic_write_text(run.metrics, "".join(json.dumps(line) + "\n" for line in lines))
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    with atomic_path(run.last) as tmp:
        torch.save({"model": model.state_dict(), "config": config_to_dict(cfg), "epoch": len(lines), "step": step},
                   tmp)
    summary = {"recipe": cfg.model.name, "model": cfg.model.name, "epochs": len(lines), "steps": step,
               "world_size": 1, "images_per_second": step * bs / wall if wall > 0 else 0.0,
               "val_accuracy": val_acc, "wall_seconds": wall, "backend": "feature-cache"}
    run.write_summary(summary)
    return summary
