"""`genimage-fast bench loader`: images/s of each loader backend vs torchvision's per-file loader.

The baseline is what the detectors' original repos do: torchvision's ImageFolder loader
(`datasets.folder.pil_loader`: PIL decode of each file of the original tree) + the same crop
(RandomResizedCrop for a training split, Resize + CenterCrop otherwise) + `DataLoader` with the same
batch size and workers, over the same samples the records hold. Each measurement skips its first
batch (worker start-up, FFCV's JIT compile) and then times `batches` batches, crossing epochs
when a split is shorter, so worker restarts between epochs are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from genimage_fast.bench.common import Measurement, report
from genimage_fast.errors import GenImageError
from genimage_fast.loaders import LOADERS, build_loader
from genimage_fast.records import open_records


class FolderBaseline(Dataset):
    """ImageFolder's per-sample path: pil_loader + a torchvision transform, label from the records."""

    def __init__(self, paths: list[Path], labels: list[int], transform: Callable) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.datasets.folder import pil_loader

        return self.transform(pil_loader(str(self.paths[i]))), self.labels[i]


def baseline_transform(train: bool, image_size: int) -> Callable:
    from torchvision import transforms as T

    crop = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()] if train else \
        [T.Resize(round(image_size / 0.875)), T.CenterCrop(image_size)]
    return T.Compose([*crop, T.PILToTensor()])


def _endless(make: Callable[[], Iterable]) -> Iterator:
    while True:
        empty = True
        for item in make():
            empty = False
            yield item
        if empty:
            raise GenImageError("the loader yields no batches (fewer samples than one batch?)")


def measure(name: str, make: Callable[[], Iterable], batches: int, device: torch.device,
            baseline: bool = False, extra: dict[str, Any] | None = None) -> Measurement:
    """Time `batches` batches after one warm-up batch; images counted from the batches themselves."""
    stream = _endless(make)
    next(stream)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        item = next(stream)
        images += len(item[0]) if isinstance(item, (list, tuple)) else len(item)
    sync()
    return Measurement(name=name, images=images, seconds=time.perf_counter() - start, baseline=baseline,
                       extra=extra or {})


def _source_paths(rs, split: str, tree: str | None) -> list[Path]:
    root = Path(tree or rs.manifest.get("source") or "")
    if not (tree or rs.manifest.get("source")) or not root.is_dir():
        raise GenImageError(f"the original tree for the baseline is not at {str(root)!r}; pass --tree")
    paths = [root / p for p in rs.split(split).meta["path"]]
    missing = next((p for p in paths if not p.is_file()), None)
    if missing is not None:
        raise GenImageError(f"{missing}: in the records but not in the tree; pass the tree they came from (--tree)")
    return paths


def _backends(text: str, fmt: str) -> list[str]:
    if text in ("all", ""):
        return [n for n in LOADERS.names() if fmt in LOADERS.get(n).formats and LOADERS.get(n).missing() is None]
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        LOADERS.get(n)  # unknown names fail here with the choices
    return names


def bench_loader_command(records: str, tree: str | None = None, backends: str = "all", batch_size: int = 64,
                         image_size: int = 224, num_workers: int = 2, batches: int = 20, split: str = "train",
                         json_path: str | None = None, device: str = "auto") -> int:
    rs = open_records(records)
    if split not in rs.splits:
        raise GenImageError(f"records at {rs.root} have no {split!r} split; they have: {', '.join(rs.splits)}")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    train = split == "train"
    meta = rs.split(split).meta
    paths = _source_paths(rs, split, tree)
    dataset = FolderBaseline(paths, [int(v) for v in meta["label"]], baseline_transform(train, image_size))

    def folder_loader() -> Iterable:
        return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train,
                          num_workers=num_workers, pin_memory=dev.type == "cuda")

    rows = [measure("loader/torchvision-folder", folder_loader, batches, dev, baseline=True)]
    for name in _backends(backends, rs.format):
        loader = build_loader(rs, backend=name, batch_size=batch_size, train=train, image_size=image_size,
                              device=dev, num_workers=num_workers, split=split)
        rows.append(measure(f"loader/{name}", lambda loader=loader: loader, batches, dev,
                            extra={"store": rs.store, "format": rs.format}))
    settings = {"records": str(rs.root), "format": rs.format, "store": rs.store,
                "max_side": rs.manifest.get("max_side"), "split": split, "samples": len(paths),
                "batch_size": batch_size, "image_size": image_size, "num_workers": num_workers,
                "batches": batches, "device": str(dev), "train_transform": "rrc" if train else "eval"}
    report(f"loader images/s ({rs.format} records, store {rs.store}, {split}, {dev})", rows, json_path, settings)
    base = rows[0].images_per_second
    for row in rows[1:]:
        print(f"{row.name}: {row.images_per_second / base:.2f}x the torchvision baseline")  # noqa: T201
    return 0
