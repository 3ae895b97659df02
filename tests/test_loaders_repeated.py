"""Repeated augmentation (DeiT's RASampler) puts copies of one image in a batch, each with its own crop:
every backend must decode each position with its own box, not one box per image."""

from __future__ import annotations

import numpy as np
import torch

from genimage_fast.loaders import build_loader
from genimage_fast.loaders.plan import BatchPlan
from tests.conftest import requires_backend


@requires_backend("ffcv")
def test_ffcv_decodes_repeated_copies_with_their_own_crops(make_records) -> None:
    records = make_records("ffcv")
    loaders = {name: build_loader(records, backend=name, batch_size=4, train=True, image_size=32, num_workers=1)
               for name in ("cpu", "ffcv")}
    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.1, 0.2, 0.9, 0.8], [0.0, 0.0, 1.0, 1.0]])
    plans = [BatchPlan(indices=np.array([3, 3, 7, 7]), boxes=boxes, flips=np.array([False, True, False, False]),
                     epoch=0)]
    out = {name: next(iter(loader._images(plans))) for name, loader in loaders.items()}
    assert not torch.equal(out["ffcv"][0], out["ffcv"][1])  # the copies differ: own box, own flip
    assert torch.equal(out["cpu"].contiguous(), out["ffcv"].contiguous())
