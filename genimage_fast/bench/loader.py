"""`genimage-fast bench loader REC [REC ...]`: each loader backend vs torchvision's per-file loader,
over the same pixels, beside the decode ceiling.

The baseline is what the detectors' original repos do: torchvision's ImageFolder loader
(`datasets.folder.pil_loader`: PIL decode of each file) + the same crop (RandomResizedCrop for a
training split, Resize + CenterCrop otherwise) + `DataLoader` with the same batch size and workers.
It reads a tree holding the pixels the records hold: the original tree for the pixel-exact stores
(`original`, `lossless`, `raw` without --max-side), a tree written from the records for the others
(`--max-side N`, `jpeg:Q`, `match-real`), so no ratio compares different pixels. The decode ceiling
is decode alone (read + full-size decode, no crop) of the same records on the same number of
threads; each loader's share of it says how much the rest of the loader costs. Given several record
sets (e.g. `original` and `lossless` of the same tree), each store is also compared with `original`
of its format: loader over loader, and per-core decode of the fakes. Each loader measurement skips
its first batch (worker start-up, FFCV's JIT compile) and then times `batches` batches, crossing
epochs when a split is shorter, so worker restarts between epochs are counted. `--backend all` benches
the installed backends and names each skipped one with its reason (a summary line, and
`settings.skipped_backends` in the JSON); a backend named explicitly but missing is a one-line error.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


def _backends(text: str, fmt: str) -> tuple[list[str], dict[str, str]]:
    """(backends to bench, {backend: why skipped}). "all": every backend that reads `fmt` and is installed;
    the ones whose library is missing are skipped and named with the reason (the output and JSON say
    so). Named backends are benched or fail in one line (build_loader refuses a missing one)."""
    if text in ("all", ""):
        readers = [n for n in LOADERS.names() if fmt in LOADERS.get(n).formats]
        skipped = {n: why for n in readers if (why := LOADERS.get(n).missing()) is not None}
        return [n for n in readers if n not in skipped], skipped
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        LOADERS.get(n)  # unknown names fail here with the choices
    return names, {}


def pixel_exact(rs) -> bool:
    """Whether the records hold the original tree's decoded pixels (original, lossless, raw, no resize)."""
    return rs.store in ("original", "lossless", "raw") and not rs.manifest.get("max_side")


def label(rs) -> str:
    side = rs.manifest.get("max_side")
    return f"{rs.format}/{rs.store}" + (f"/max-side-{side}" if side else "")


def write_pixel_tree(rs, split: str, out: Path) -> list[Path]:
    """A tree holding the records' own pixels, at the source's relative paths: encoded payloads
    (jpeg:Q, match-real, resized originals) verbatim, pixel payloads (raw, lossless) as PNG. The
    baseline over it decodes what the records hold, so the ratio compares equal work."""
    from genimage_fast.records.imageio import encode_png

    part = rs.split(split)
    paths = []
    for i, rel in enumerate(part.meta["path"]):
        kind, payload = part.read_encoded(i)
        if kind in ("jpeg", "png"):
            data, suffix = bytes(payload), (".jpg" if kind == "jpeg" else ".png")
        else:
            from PIL import Image

            data, suffix = encode_png(Image.fromarray(part.read_image(i))), ".png"
        path = (out / rel).with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def decode_ceiling(rs, split: str, indices: list[int], threads: int, name: str, group: str) -> Measurement:
    """Decode alone (read + full-size decode, no crop, no batching) of these samples with `threads`
    threads: every decoder releases the GIL, so this is what the same cores can decode at most."""
    from genimage_fast.loaders.decode import decode_full

    part = rs.split(split)

    def one(i: int) -> int:
        return decode_full(*part.read_encoded(i)).shape[0]

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(one, indices[: max(1, threads)]))  # warm-up: imports, numba's cached kernel
        cpu, start = time.process_time(), time.perf_counter()
        list(pool.map(one, indices))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU seconds too: on a shared machine, images per CPU-second is the per-core figure load does not skew
    return Measurement(name=name, images=len(indices), seconds=seconds,
                       extra={"group": group, "threads": threads, "cpu_seconds": cpu,
                              "images_per_cpu_second": len(indices) / cpu if cpu > 0 else float("inf")})


def bench_loader_command(records: str | list[str], tree: str | None = None, backends: str = "all",
                         batch_size: int = 64, image_size: int = 224, num_workers: int = 2, batches: int = 20,
                         split: str = "train", json_path: str | None = None, device: str = "auto") -> int:
    """One or more record sets in one run. Per set: its backends, the torchvision baseline over a tree
    holding the same pixels (the original tree for pixel-exact stores, one written from the records
    otherwise), and the decode ceiling; across sets, each store vs `original` of the same format."""
    sets = [open_records(r) for r in ([records] if isinstance(records, str) else records)]
    for rs in sets:
        if split not in rs.splits:
            raise GenImageError(f"records at {rs.root} have no {split!r} split; they have: {', '.join(rs.splits)}")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    train = split == "train"
    transform = baseline_transform(train, image_size)

    def folder(paths: list[Path], labels: list[int]) -> Callable[[], Iterable]:
        dataset = FolderBaseline(paths, labels, transform)
        return lambda: DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train,
                                  num_workers=num_workers, pin_memory=dev.type == "cuda")

    rows: list[Measurement] = []
    summary: list[str] = []
    tree_rows: dict[tuple, Measurement] = {}  # the original tree's baseline, measured once
    by_set: dict[str, dict[str, Measurement]] = {}
    skipped: dict[str, str] = {}  # backend -> why it was not benched (its library is missing here)
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        for n, rs in enumerate(sets):
            group = label(rs)
            meta = rs.split(split).meta
            labels = [int(v) for v in meta["label"]]
            if pixel_exact(rs):
                paths = _source_paths(rs, split, tree)
                key = tuple(map(str, paths))
                if key not in tree_rows:
                    tree_rows[key] = measure("loader/torchvision-folder (original tree)", folder(paths, labels),
                                             batches, dev, baseline=True)
                base = tree_rows[key]
                base = Measurement(base.name, base.images, base.seconds, True, {"group": group, "tree": "original"})
            else:
                paths = write_pixel_tree(rs, split, Path(tmp) / f"set{n}")
                base = measure("loader/torchvision-folder (tree of these pixels)", folder(paths, labels), batches,
                               dev, baseline=True, extra={"group": group, "tree": "records' pixels"})
            mine = {"baseline": base}
            rows.append(base)
            names, missing = _backends(backends, rs.format)
            skipped.update(missing)
            for name in names:
                loader = build_loader(rs, backend=name, batch_size=batch_size, train=train, image_size=image_size,
                                      device=dev, num_workers=num_workers, split=split)
                mine[name] = measure(f"loader/{name}", lambda loader=loader: loader, batches, dev,
                                     extra={"group": group, "store": rs.store, "format": rs.format,
                                            "decoder": getattr(loader, "decoder", "full")})
                rows.append(mine[name])
            count = min(len(meta["label"]), batches * batch_size)
            everything = list(range(count))
            fakes = [i for i in range(len(meta["label"])) if meta["label"][i] == 1][:count]
            for what, indices in (("all", everything), ("fakes", fakes)):
                for threads in sorted({1, max(1, num_workers)}):
                    if indices and (what == "all" or threads == 1):
                        m = decode_ceiling(rs, split, indices, threads,
                                           f"decode-ceiling/{what} {threads} thread(s)", group)
                        mine[f"ceiling-{what}-{threads}"] = m
                        rows.append(m)
            ceiling = mine.get(f"ceiling-all-{max(1, num_workers)}")
            for name, m in mine.items():
                if name in LOADERS.names() and ceiling is not None:
                    m.extra["share_of_decode_ceiling"] = m.images_per_second / ceiling.images_per_second
                    summary.append(f"{group} loader/{name}: {m.images_per_second / base.images_per_second:.2f}x "
                                   f"the torchvision baseline over the {base.extra['tree']} tree, "
                                   f"{m.extra['share_of_decode_ceiling']:.2f} of the decode ceiling")
            by_set[group] = mine
    for group, mine in by_set.items():  # equal pixels across stores: each vs original of the same format
        fmt = group.split("/")[0]
        reference = by_set.get(f"{fmt}/original")
        if reference is None or group == f"{fmt}/original" or "max-side" in group:
            continue
        for name in mine:
            if name in reference and (name in LOADERS.names() or name.startswith("ceiling-fakes-1")):
                ratio = mine[name].images_per_second / reference[name].images_per_second
                mine[name].extra["ratio_to_original_records"] = ratio
                if name.startswith("ceiling"):
                    per_cpu = mine[name].extra["images_per_cpu_second"] / reference[name].extra["images_per_cpu_second"]
                    mine[name].extra["cpu_ratio_to_original_records"] = per_cpu
                    summary.append(f"{group} vs {fmt}/original, same pixels: decode of the fakes per core "
                                   f"{ratio:.2f}x (wall), {per_cpu:.2f}x (per CPU-second)")
                else:
                    summary.append(f"{group} vs {fmt}/original, same pixels: loader/{name} {ratio:.2f}x")
    settings = {"records": [str(rs.root) for rs in sets], "stores": [label(rs) for rs in sets], "split": split,
                "batch_size": batch_size, "image_size": image_size, "num_workers": num_workers, "batches": batches,
                "device": str(dev), "train_transform": "rrc" if train else "eval", "load_average": os.getloadavg()[0],
                "skipped_backends": skipped}
    summary += [f"skipped backend {name}: {why}" for name, why in skipped.items()]
    title = f"loader images/s ({', '.join(label(rs) for rs in sets)}; {split}, {dev})"
    report(title, rows, json_path, settings, group=lambda m: m.extra.get("group", ""))
    sys.stdout.write("".join(line + "\n" for line in summary))
    return 0
