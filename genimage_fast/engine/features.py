"""`genimage-fast features`: a frozen backbone's features computed once per split, cached on disk.

For UnivFD-style detectors (a probe on frozen features) the backbone forward is nearly all the cost,
and it does not change while the probe trains: the features of each split's eval-transformed images
are computed once (bf16 autocast on a GPU, fp32 on the CPU), written into a `.npy` memmap beside the
records, and the probe then trains from the cache in seconds (`engine/probe.py`). Degraded
evaluation does not use the cache: `eval --degrade` runs the whole model on the degraded inputs.

Layout of OUT (default RECORDS/features/<key>, key = sha256 of what the features depend on: model
name and options, weights' sha256, eval transform, image size, the records' run key):
`{split}.npy` float32 [N, D], `{split}.labels.npy` / `{split}.generators.npy` int64 [N],
`{split}.progress.json` (rows written; checked against the key), `meta.json` (written last).
Resumable: a rerun continues at the first unwritten batch; rows already written are kept.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimage_fast.atomic import atomic_write_text
from genimage_fast.config import RecipeConfig, config_to_dict, load_config
from genimage_fast.devices import resolve_device
from genimage_fast.errors import GenImageError

FEATURES_DIR = "features"


@dataclass
class FeatureSource:
    """What computes the features: a model with `.features(x)`, its config and identity."""

    model: torch.nn.Module
    config: RecipeConfig
    identity: dict[str, Any]


def load_source(model_or_run: str | Path, overrides: tuple[str, ...] = (), device: torch.device | None = None
                ) -> FeatureSource:
    """A recipe YAML (the model as it starts training) or a run directory / checkpoint (as trained)."""
    from genimage_fast.models import create_model

    path = Path(model_or_run)
    device = device or torch.device("cpu")
    if path.suffix in (".yaml", ".yml"):
        cfg = load_config(path, list(overrides))
        torch.manual_seed(cfg.train.seed)  # a file-less (random) backbone: the probe trainer rebuilds it alike
        model = create_model(cfg.model.name, **cfg.model.kwargs)
    else:
        from genimage_fast.engine.evaluate import load_run

        loaded = load_run(path, device)
        cfg, model = loaded.config, loaded.model
    if not getattr(model, "frozen_features", False):
        raise GenImageError(f"model {cfg.model.name!r} has no frozen features to cache (a model with a frozen "
                            f"backbone and `.features(x)`, as univfd)")
    identity = {"model": cfg.model.name, "kwargs": cfg.model.kwargs,
                "weights_sha256": getattr(model, "backbone_sha256", ""), "eval_transform": cfg.data.eval_transform,
                "image_size": cfg.data.image_size, "resize_size": cfg.data.resize_size,
                "fast_jpeg_decode": cfg.data.fast_jpeg_decode}
    if not identity["weights_sha256"]:  # random or in-checkpoint backbone: hash its tensors
        digest = hashlib.sha256()
        for key, value in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        identity["weights_sha256"] = digest.hexdigest()
    return FeatureSource(model.to(device).eval(), cfg, identity)


def cache_key(identity: dict[str, Any], records_manifest: dict[str, Any]) -> str:
    doc = {**identity, "records": records_manifest.get("run_key") or records_manifest.get("created")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _progress(out: Path, split: str) -> Path:
    return out / f"{split}.progress.json"


def compute_split(source: FeatureSource, records, split: str, out: Path, key: str, batch_size: int,
                  device: torch.device, backend: str = "auto") -> int:
    """Fill OUT/{split}.npy (resuming after the rows already written); returns the row count."""
    from genimage_fast.engine.evaluate import eval_loader

    cfg = source.config
    # exactly the loader `eval` feeds the model (eval transform, resize size, decode settings)
    loader = eval_loader(cfg, records, split, batch_size, backend, device)
    n = len(records.split(split))
    meta = records.split(split).meta
    probe = source.model.features(torch.zeros(1, 3, cfg.data.image_size, cfg.data.image_size, device=device))
    dim = int(probe.shape[1])
    feats_path = out / f"{split}.npy"
    done = 0
    state = _progress(out, split)
    if state.is_file() and feats_path.is_file():
        saved = json.loads(state.read_text())
        if saved.get("key") == key and saved.get("batch_size") == batch_size and saved.get("rows") == n:
            done = int(saved["done"])
    if done == 0:
        feats = np.lib.format.open_memmap(feats_path, mode="w+", dtype=np.float32, shape=(n, dim))
    else:
        feats = np.load(feats_path, mmap_mode="r+")
    np.save(out / f"{split}.labels.npy", np.asarray(meta["label"], dtype=np.int64))
    np.save(out / f"{split}.generators.npy", np.asarray(meta["generator"], dtype=np.int64))
    start_batch = done // batch_size
    loader.set_epoch(0, start_batch=start_batch)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    with torch.no_grad():
        for batch in loader:
            with autocast:
                f = source.model.features(batch.images.float().div_(255.0))
            idx = batch.indices.cpu().numpy()  # the prefetcher moves every Batch field to the device
            feats[idx] = f.float().cpu().numpy()
            done = int(idx.max()) + 1
            feats.flush()  # the rows are on disk before the progress says so
            atomic_write_text(state, json.dumps({"key": key, "batch_size": batch_size, "rows": n, "done": done}))
    del feats
    return n


def compute_features(model_or_run: str | Path, data: str | Path, out: str | Path | None = None,
                     splits: tuple[str, ...] | None = None, overrides: tuple[str, ...] = (), batch_size: int = 64,
                     device: str = "auto", backend: str = "auto") -> Path:
    """Cache the features of every (chosen) split of RECORDS; returns the cache folder."""
    from genimage_fast.records import open_records

    dev = resolve_device(device)
    source = load_source(model_or_run, overrides, dev)
    records = open_records(data)
    key = cache_key(source.identity, records.manifest)
    out_path = Path(out) if out else Path(records.root) / FEATURES_DIR / key[:16]
    out_path.mkdir(parents=True, exist_ok=True)
    chosen = splits or tuple(records.splits)
    counts = {s: compute_split(source, records, s, out_path, key, batch_size, dev, backend) for s in chosen}
    meta = {"key": key, "identity": source.identity, "records": str(Path(records.root).resolve()), "splits": counts,
            "config": config_to_dict(source.config), "dtype": "float32"}
    atomic_write_text(out_path / "meta.json", json.dumps(meta, indent=2, default=str) + "\n")
    return out_path


@dataclass
class FeatureCache:
    root: Path
    meta: dict[str, Any]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features [N, D] memmap, labels [N], generators [N]) of a finished split."""
        if name not in self.meta.get("splits", {}):
            raise GenImageError(f"feature cache {self.root} has no {name!r} split; it has: "
                                f"{', '.join(self.meta.get('splits', {})) or 'none'}")
        return (np.load(self.root / f"{name}.npy", mmap_mode="r"), np.load(self.root / f"{name}.labels.npy"),
                np.load(self.root / f"{name}.generators.npy"))


def open_cache(path: str | Path) -> FeatureCache:
    root = Path(path)
    if not (root / "meta.json").is_file():
        raise GenImageError(f"{root} is not a finished feature cache (no meta.json: run `genimage-fast features`)")
    return FeatureCache(root, json.loads((root / "meta.json").read_text()))


def features_command(model_or_run: str, data: str, out: str | None = None, split: str = "all",
                     overrides: tuple[str, ...] = (), batch_size: int = 64, device: str = "auto",
                     probe: str | None = None) -> int:
    """`genimage-fast features MODEL_OR_RUN --data RECORDS [--out DIR] [--probe RUN_DIR]`."""
    splits = None if split == "all" else (split,)
    cache = compute_features(model_or_run, data, out, splits, tuple(overrides), batch_size, device)
    sys.stdout.write(f"features: {cache}\n")
    if probe:
        from genimage_fast.engine.probe import train_probe

        summary = train_probe(cache, probe, data=data)
        acc = summary["val_accuracy"].get("mean")
        sys.stdout.write(f"probe trained in {summary['wall_seconds']:.1f} s"
                         f"{f', mean val accuracy {acc:.4f}' if acc is not None else ''}; run: {probe}\n")
    return 0
