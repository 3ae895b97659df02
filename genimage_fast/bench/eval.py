"""`genimage-fast bench eval`: eval images/s with --degrade-at source vs --degrade-at crop, same run.

Both rows score the same run on the same split under the same specs through the engine's own
`score_records`. Crop (the baseline, the engine's path before issue #12) decodes each test image
once and degrades its model-size crop under every spec on the device; source decodes the split once
per spec, degrades the full image (the paper's protocol) and applies the eval transform to it.
On CUDA a third row, `eval/source-host`, keeps the source pipeline in the host workers
(build_loader(pipeline_on="host")): the device path (loaders/device_eval.py) against the host on equal work.
images = test images x specs; a warm-up pass over one spec comes first (untimed).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from genimage_fast.bench.common import Measurement, report
from genimage_fast.engine.evaluate import open_inputs, parse_specs, score_records

DEFAULT_SPECS = "none,lr:112,lr:64,jpeg:65,jpeg:30,blur:3,blur:5"  # Task 2


def bench_eval(run: str, data: str, degrade: str = DEFAULT_SPECS, split: str = "val", batch_size: int = 64,
               backend: str = "auto", device: str = "auto") -> tuple[list[Measurement], dict[str, Any]]:
    specs = parse_specs(degrade)
    dev, loaded, records = open_inputs(run, data, split, device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    common = dict(split=split, batch_size=batch_size, backend=backend, device=dev)
    score_records(loaded, records, specs[:1], degrade_at="crop", **common)  # warm-up: caches, workers, kernels
    if dev.type == "cuda":  # the device path's Triton kernels compile on first use of each launch shape
        score_records(loaded, records, specs, degrade_at="source", **common)
    rows, protocols = [], {}
    # crop (baseline) first, then source; on CUDA also source with the pipeline kept on the host
    # (workers: PIL / scipy), so the device path's gain is measured on the same run, split and specs
    passes = [("crop", "crop", "auto"), ("source", "source", "auto")]
    if dev.type == "cuda":
        passes.append(("source-host", "source", "host"))
    for label, mode, place in passes:
        sync()
        start = time.perf_counter()
        predictions, protocol = score_records(loaded, records, specs, degrade_at=mode, pipeline_on=place, **common)
        sync()
        seconds = time.perf_counter() - start
        rows.append(Measurement(f"eval/{label}", len(predictions.labels) * len(specs), seconds,
                                baseline=label == "crop",
                                extra={"test_images": int(len(predictions.labels)),
                                       "pipeline_on": protocol.get("pipeline_on"), "decoder": protocol["decoder"]}))
        protocols[label] = protocol
    cfg = loaded.config
    settings = {"run": str(run), "data": str(data), "split": split, "specs": specs, "model": cfg.model.name,
                "image_size": cfg.data.image_size, "batch_size": batch_size, "num_workers": cfg.data.num_workers,
                "device": str(dev), "eval_transform": protocols["source"]["eval_transform"],
                "backend": protocols["source"]["backend"], "decoder": protocols["source"]["decoder"],
                "pipeline_on": protocols["source"].get("pipeline_on")}
    return rows, settings


def bench_eval_command(run: str, data: str, degrade: str, split: str, batch_size: int, backend: str,
                       json_path: str | None, device: str) -> int:
    rows, settings = bench_eval(run, data, degrade=degrade, split=split, batch_size=batch_size, backend=backend,
                                device=device)
    report(f"eval throughput, --degrade-at source vs crop ({settings['model']}, {settings['device']}, "
           f"{len(settings['specs'])} specs)", rows, json_path, settings)
    return 0
