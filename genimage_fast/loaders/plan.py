"""The epoch plan: which samples, in what order, on which rank, in which batch, with which crop.

Everything a backend needs to produce a batch is decided here, in the main process, as a pure
function of (seed, epoch, rank, world_size, filters): backends only read, decode and resize. That
makes every backend yield the same samples in the same batches with the same crop boxes, makes
results independent of worker counts, and makes `start_batch` resume exact.

DDP rule (DistributedSampler's): the epoch order is split by striding, rank r takes positions
r, r + W, r + 2W, ... With drop_last (training's default) the tail that does not fill a whole
round is dropped, so ranks are disjoint and equal; without it (eval) the order is padded by repeating
its first samples so every rank gets ceil(n / W) samples (the padded repeats show up in
`Batch.indices`, so evaluation can drop duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.frames import in_frames
from genimage_fast.loaders.transforms import CropPlan, TransformSpec, make_crop_plan


@dataclass(frozen=True)
class BatchPlan:
    """One batch: split indices int64 [n], crop boxes float64 [n, 4] (fractions), flips bool [n]."""

    indices: np.ndarray
    boxes: np.ndarray
    flips: np.ndarray
    epoch: int = 0  # the epoch it belongs to (full-image train transforms seed per (seed, epoch, index))

    def __len__(self) -> int:
        return len(self.indices)


def epoch_order(selected: np.ndarray, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The selected split indices in this epoch's order (a permutation seeded by (seed, epoch))."""
    if not shuffle:
        return selected
    return selected[np.random.default_rng([seed, epoch]).permutation(len(selected))]


def rank_share(order: np.ndarray, rank: int, world_size: int, drop_last: bool) -> np.ndarray:
    """This rank's samples: strided, equal across ranks (drop the tail, or pad by repeating)."""
    if world_size == 1:
        return order
    if drop_last:
        order = order[: len(order) // world_size * world_size]
    elif len(order) % world_size:
        pad = world_size - len(order) % world_size
        order = np.concatenate([order, np.resize(order, pad)])
    return order[rank::world_size]


def repeated_positions(count: int, repeats: int, rank: int, world_size: int,
                       selected_round: int = 256) -> tuple[int, np.ndarray]:
    """DeiT samplers.py RASampler over an epoch order of `count` samples: each position repeated
    `repeats` times in a row, padded from the front to a multiple of the world size, strided over
    ranks, and only the first floor(count // 256 * 256 / world) of a rank's share kept (so an epoch
    stays ~count samples over all ranks). Returns (padded length, this rank's positions into it)."""
    per_rank = -(-count * repeats // world_size)
    total = per_rank * world_size
    keep = count // selected_round * selected_round // world_size
    if count and not keep:
        raise GenImageError(f"repeated_aug (RASampler) keeps floor({count} // {selected_round} * {selected_round}"
                            f" / {world_size}) = 0 samples per rank: it needs >= {selected_round * world_size} images")
    return total, np.arange(rank, total, world_size)[:keep]


def batches_per_epoch(count: int, batch_size: int, drop_last: bool) -> int:
    return count // batch_size if drop_last else -(-count // batch_size)


@dataclass(frozen=True)
class EpochPlanner:
    """Makes the list of BatchPlans for an epoch; holds only immutable settings."""

    selected: np.ndarray  # split indices after the generator filter, ascending
    width: np.ndarray  # source sizes for the whole split (crop boxes are drawn from these)
    height: np.ndarray
    spec: TransformSpec
    batch_size: int
    seed: int
    rank: int
    world_size: int
    drop_last: bool
    shuffle: bool
    repeated_aug: int = 1  # DeiT's RASampler: each sample this many times per epoch, own crops each
    frames: np.ndarray | None = None  # [N, 4] per-sample region boxes are drawn in (loaders/frames.py)

    @property
    def samples_per_rank(self) -> int:
        n = len(self.selected)
        if self.repeated_aug > 1:
            per_rank = len(repeated_positions(n, self.repeated_aug, self.rank, self.world_size)[1])
        elif self.world_size == 1:
            per_rank = n
        elif self.drop_last:
            per_rank = n // self.world_size
        else:
            per_rank = -(-n // self.world_size)
        return per_rank

    def __len__(self) -> int:
        return batches_per_epoch(self.samples_per_rank, self.batch_size, self.drop_last)

    @property
    def num_samples(self) -> int:
        """Samples this rank yields per epoch (after drop_last / padding)."""
        return min(len(self) * self.batch_size, self.samples_per_rank)

    def crops(self, epoch: int) -> CropPlan:
        return make_crop_plan(self.spec, self.width, self.height, self.seed, epoch)

    def batches(self, epoch: int, start_batch: int = 0) -> list[BatchPlan]:
        """This rank's batches for the epoch, from start_batch on."""
        order = epoch_order(self.selected, self.seed, epoch, self.shuffle)
        if self.repeated_aug > 1:  # crops drawn per position of the padded list: each copy its own
            total, mine = repeated_positions(len(order), self.repeated_aug, self.rank, self.world_size)
            full = np.resize(np.repeat(order, self.repeated_aug), total)  # np.resize pads from the front
            crops = make_crop_plan(self.spec, self.width[full], self.height[full], self.seed, epoch)
            order, boxes, flips = full[mine], crops.boxes[mine], crops.flips[mine]
        else:
            order = rank_share(order, self.rank, self.world_size, self.drop_last)
            crops = self.crops(epoch)
            boxes, flips = crops.boxes[order], crops.flips[order]
        if self.frames is not None:  # boxes were drawn in each sample's frame (width/height = the frame's)
            boxes = in_frames(boxes, self.frames[order])
        plans = []
        for b in range(start_batch, len(self)):
            part = slice(b * self.batch_size, (b + 1) * self.batch_size)
            plans.append(BatchPlan(indices=order[part].astype(np.int64), boxes=boxes[part], flips=flips[part],
                                   epoch=epoch))
        return plans
