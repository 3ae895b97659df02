"""The Loader every backend subclasses, the LOADERS registry and build_loader (DESIGN §4.4).

A backend only turns BatchPlans (indices + crop boxes + flips, decided by the EpochPlanner) into
uint8 [N,3,S,S] image tensors; labels and metadata come from the split's metadata arrays here, so
every backend yields the same samples, batches and metadata by construction.

backend="auto" rule: the backend native to the record format (`dali` for webdataset shards,
`ffcv` for .beton files) when its library imports, else `cpu`, which reads both formats. An explicit
backend that is not installed or cannot read the format is a GenImageError, never a fallback.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from genimage_fast.errors import GenImageError
from genimage_fast.generators import parse_generators
from genimage_fast.loaders.batch import Batch
from genimage_fast.loaders.decode import DCT_SCALED, FULL, turbojpeg_missing
from genimage_fast.loaders.frames import centre_crop_sizes, frames
from genimage_fast.loaders.pipelines import (
    EVAL_TRANSFORMS,
    TRAIN_TRANSFORMS,
    SamplePipeline,
    build_transform,
    load_transforms,
    parse_degrade,
)
from genimage_fast.loaders.plan import BatchPlan, EpochPlanner
from genimage_fast.loaders.prefetch import prefetch
from genimage_fast.loaders.transforms import TransformSpec
from genimage_fast.registry import Registry, close_matches

BOX_TRANSFORMS = ("rrc", "resize_crop")  # train transforms the planner reduces to a crop box + flip
# Loader.pipeline_on (results protocol): where the resize / degradation / eval transform ran
HOST, DEVICE = "host", "device"
PIPELINE_ON = ("auto", HOST)  # build_loader(pipeline_on=...): the device where a backend can, or the host


class Loader(ABC):
    """Iterable of Batch; len() = batches per epoch on this rank; set_epoch() picks the epoch."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # record formats this backend reads

    supports_fast_jpeg: ClassVar[bool] = True  # can decode JPEGs at a reduced DCT scale (opt-in)

    def __init__(self, records, split: str, planner: EpochPlanner, device: torch.device,
                 num_workers: int, pipeline: SamplePipeline | None = None, fast_jpeg: bool = False,
                 host_only: bool = False) -> None:
        self.records = records
        self.split_name = split
        self.split = records.split(split)
        self.planner = planner
        self.device = device
        self.num_workers = num_workers
        # None: the box path (decode + one box resize); else every sample is decoded at full size and
        # goes through this picklable full-image pipeline (degrade, then the eval / train transform).
        self.pipeline = pipeline
        self.fast_jpeg = bool(fast_jpeg)
        self.host_only = bool(host_only)  # pipeline_on="host": no GPU decode / device pipeline even on CUDA
        self.decoder = DCT_SCALED if self.fast_jpeg else FULL  # recorded with runs and results
        self.pipeline_on = HOST  # a backend that resizes / degrades on the device says DEVICE
        self.epoch = 0
        self.start_batch = 0
        meta = self.split.meta
        self._meta = {key: torch.from_numpy(np.array(meta[key], dtype=np.int64))
                      for key in ("label", "generator", "class_id")}

    @staticmethod
    @abstractmethod
    def missing() -> str | None:
        """Why this backend cannot run here (a missing library), or None when it can."""

    @abstractmethod
    def _images(self, plans: list[BatchPlan]) -> Iterator[torch.Tensor]:
        """uint8 [n,3,S,S] tensors, one per plan, in order (on the CPU or already on self.device)."""

    @property
    def image_size(self) -> int:
        return self.planner.spec.image_size

    @property
    def num_samples(self) -> int:
        """Samples this loader yields per epoch on this rank."""
        return self.planner.num_samples

    def __len__(self) -> int:
        return len(self.planner)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch (order and crops follow (seed, epoch)); skip its first start_batch batches."""
        if not 0 <= start_batch <= len(self):
            raise GenImageError(f"start_batch {start_batch} is outside 0..{len(self)}")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self) -> Iterator[Batch]:
        plans = self.planner.batches(self.epoch, self.start_batch)
        # A new iteration without set_epoch() moves on to the next epoch, as FFCV's Loader does.
        self.epoch, self.start_batch = self.epoch + 1, 0
        return prefetch(self._batches(plans), self.device)

    def _batches(self, plans: list[BatchPlan]) -> Iterator[Batch]:
        for plan, images in zip(plans, self._images(plans), strict=True):
            idx = torch.from_numpy(plan.indices)
            yield Batch(images=images, labels=self._meta["label"][idx], generators=self._meta["generator"][idx],
                        class_ids=self._meta["class_id"][idx], indices=idx)

    def locate(self, index: int) -> str:
        """The record file that holds sample `index` of the split (for error messages)."""
        return locate_file(self.records, self.split_name, index)


LOADERS: Registry[type[Loader]] = Registry("loader backend")


def locate_file(records, split: str, index: int) -> str:
    """Name the shard / .beton of a sample from the manifest's per-file counts."""
    files = records.manifest.get("splits", {}).get(split, {}).get("files", [])
    start = 0
    for entry in files:
        if index < start + int(entry.get("count", 0)):
            return str(Path(records.root) / entry["name"])
        start += int(entry.get("count", 0))
    return str(records.root)


_SKIPPED: set[str] = set()


def _log_skip_once(name: str, why: str) -> None:
    if name not in _SKIPPED:
        _SKIPPED.add(name)
        logging.getLogger(__name__).warning("backend auto: skipping the %s loader (%s); using cpu", name, why)


def choose_backend(backend: str, fmt: str) -> str:
    """Apply the auto rule, or check an explicit choice (installed and able to read `fmt`)."""
    if backend == "auto":  # a format-specific backend that is installed, else the universal cpu one
        native = [name for name in LOADERS.names() if LOADERS.get(name).formats == (fmt,)]
        for name in native:
            why = LOADERS.get(name).missing()
            if why is None:
                return name
            _log_skip_once(name, why)  # never silent: say once per process why auto passed it over
        return "cpu"
    cls = LOADERS.get(backend)
    if fmt not in cls.formats:
        raise GenImageError(f"the {backend} loader cannot read {fmt} records; it reads: {', '.join(cls.formats)} "
                            f"(use backend='cpu' or 'auto')")
    why = cls.missing()
    if why:
        raise GenImageError(f"the {backend} loader is not available here: {why}")
    return backend


def _check_fast_jpeg(name: str) -> None:
    """fast_jpeg_decode needs a backend that decodes through decode.py and PyTurboJPEG's scaled decode:
    one line otherwise, never a full-size decode recorded as "dct-scaled"."""
    if not LOADERS.get(name).supports_fast_jpeg:
        raise GenImageError(f"the {name} loader always decodes at full size; fast_jpeg_decode needs "
                            f"backend 'cpu' or 'ffcv'")
    why = turbojpeg_missing()
    if why:
        raise GenImageError(f"fast_jpeg_decode needs libjpeg-turbo's DCT-scaled decode: {why}")


def _open(records):
    from genimage_fast.records import open_records

    return records if hasattr(records, "split") and hasattr(records, "manifest") else open_records(records)


def build_loader(records, backend: str = "auto", batch_size: int = 64, train: bool = True,
                 image_size: int = 224, device: str | torch.device = "cpu", num_workers: int = 2,
                 seed: int = 0, generators: Sequence[int | str] | str | None = None, rank: int = 0,
                 world_size: int = 1, split: str | None = None, train_transform: str = "rrc",
                 resize_size: int = 0, drop_last: bool | None = None, hflip: float = 0.5,
                 subset: np.ndarray | None = None, eval_transform: str | None = None,
                 degrade: str | None = None, fast_jpeg_decode: bool = False,
                 transform_options: dict | None = None, repeated_aug: int = 1, pipeline_on: str = "auto") -> Loader:
    """A Loader over `records` (a path or RecordSet) yielding Batch objects; see DESIGN §4.4.

    train: shuffled per (seed, epoch), drop_last by default; `train_transform` is a box transform
    ("rrc", "resize_crop": crop + flip with probability `hflip`) or a TRAIN_TRANSFORMS name (each sample
    decoded at full size, then `factory(image_size=S, **transform_options)(image, sample_rng(...))`).
    eval: sequential; `eval_transform` an EVAL_TRANSFORMS name (None = "resize_centre": resize short
    side to `resize_size` (image_size / 0.875) + centre crop); `degrade` a spec ("none", "lr:S",
    "jpeg:Q", "blur:SIGMA") applied to the full decoded image before the eval transform.
    fast_jpeg_decode: opt-in reduced-scale DCT JPEG decode for the box transforms (loader.decoder
    "dct-scaled"; needs PyTurboJPEG, one-line error without it); by default every backend decodes JPEG
    and PNG at full size ("full").
    subset: split indices to keep (intersected with `generators`), e.g. a selection set carved from train.
    repeated_aug: train only; R > 1 repeats each sample R times per epoch as DeiT's RASampler (loaders/plan.py).
    pipeline_on: "auto" (on CUDA, decode / degrade / transform on the device where a backend can:
    loader.pipeline_on says where they ran) or "host" (everything in the workers on the host, PIL's exact
    pixels, even on CUDA; the batches are then copied to the device).
    """
    if batch_size < 1 or image_size < 1:
        raise GenImageError(f"batch_size and image_size must be >= 1 (got {batch_size}, {image_size})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise GenImageError(f"need 0 <= rank < world_size (got rank {rank}, world_size {world_size})")
    if num_workers < 0:
        raise GenImageError(f"num_workers must be >= 0 (got {num_workers})")
    if not 0.0 <= hflip <= 1.0:
        raise GenImageError(f"hflip is a probability in [0, 1] (got {hflip})")
    if pipeline_on not in PIPELINE_ON:
        raise GenImageError(f"unknown pipeline_on {pipeline_on!r}; choose from: {', '.join(PIPELINE_ON)}")
    kind, pipeline = _sample_pipeline(train, train_transform, eval_transform, degrade, transform_options,
                                      image_size, resize_size, seed)
    if fast_jpeg_decode and pipeline is not None:
        raise GenImageError("fast_jpeg_decode applies only to the box transforms (rrc, resize_crop, "
                            "resize_centre without degrade); full-image transforms decode at full size")
    rs = _open(records)
    split = split or ("train" if train else "val")
    if split not in rs.splits:
        have = ", ".join(rs.splits) or "none"
        raise GenImageError(f"records at {rs.root} have no {split!r} split; they have: {have}")
    if fast_jpeg_decode and backend != "auto":  # a property of the backend: refused whether installed or not
        _check_fast_jpeg(backend)
    name = choose_backend(backend, rs.format)
    if fast_jpeg_decode:
        _check_fast_jpeg(name)
    meta = rs.split(split).meta
    gen_ids = parse_generators(generators)
    gens = np.asarray(meta["generator"], dtype=np.int64)
    selected = np.flatnonzero(np.isin(gens, gen_ids) if gen_ids is not None else np.ones(len(gens), dtype=bool))
    if subset is not None:  # split indices to keep (the trainer's selection set / its complement)
        subset = np.asarray(subset, dtype=np.int64)
        if subset.size and (subset.min() < 0 or subset.max() >= len(gens)):
            raise GenImageError(f"subset indices must lie in 0..{len(gens) - 1} for split {split!r}")
        selected = np.intersect1d(selected, subset)
    if len(selected) == 0:
        raise GenImageError(f"no samples in split {split!r} of {rs.root} for generators {gen_ids}")
    width, height = np.asarray(meta["width"], dtype=np.int64), np.asarray(meta["height"], dtype=np.int64)
    frame = None
    centre = centre_crop_sizes(rs.manifest, gens, getattr(rs, "generator_names", None))
    if centre is not None:  # the records' protocol crops every image first (Grommelt et al.)
        frame, width, height = frames(centre, width, height)
        if pipeline is not None:
            pipeline = dataclasses.replace(pipeline, centre=centre)
    planner = EpochPlanner(
        selected=selected.astype(np.int64), width=width, height=height, frames=frame,
        spec=TransformSpec(kind=kind, image_size=image_size, resize_size=resize_size, hflip=hflip),
        batch_size=batch_size, seed=seed, rank=rank, world_size=world_size,
        drop_last=train if drop_last is None else drop_last, shuffle=train,
        repeated_aug=repeated_aug if train else 1)  # DeiT's RASampler (train only)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GenImageError("device 'cuda' was asked for but CUDA is not available")
        if dev.index is None:  # "cuda" -> "cuda:N", so device comparisons and DALI's device_id agree
            dev = torch.device("cuda", torch.cuda.current_device())
    return LOADERS.get(name)(rs, split, planner, dev, num_workers, pipeline=pipeline,
                             fast_jpeg=fast_jpeg_decode, host_only=pipeline_on == HOST)


def _sample_pipeline(train: bool, train_transform: str, eval_transform: str | None, degrade: str | None,
                     options: dict | None, image_size: int, resize_size: int,
                     seed: int) -> tuple[str, SamplePipeline | None]:
    """The planner's crop kind and the full-image pipeline (None for the box path)."""
    load_transforms()
    options = dict(options or {})
    if train:
        if parse_degrade(degrade) is not None:
            raise GenImageError("degrade is for evaluation only (train=False); training augmentations "
                                "belong to the train transform")
        if eval_transform is not None:
            raise GenImageError("eval_transform is for evaluation only (train=False); use train_transform")
        if train_transform in BOX_TRANSFORMS:
            if options:
                raise GenImageError(f"train_transform {train_transform!r} takes no transform_options "
                                    f"(got {', '.join(sorted(options))})")
            return train_transform, None
        if train_transform not in TRAIN_TRANSFORMS:
            names = [*BOX_TRANSFORMS, *TRAIN_TRANSFORMS.names()]
            raise GenImageError(f"unknown train transform {train_transform!r}"
                                f"{close_matches(str(train_transform), names)}; choose from: {', '.join(names)}")
        transform = build_transform(TRAIN_TRANSFORMS, train_transform, image_size, options)
        return "full", SamplePipeline(transform, image_size, None, train=True, seed=seed, name=train_transform)
    name = eval_transform or "resize_centre"
    EVAL_TRANSFORMS.get(name)  # unknown: one line with close matches
    spec = parse_degrade(degrade)
    if name == "resize_centre":
        if spec is None and not options:
            return "eval", None  # the box path: decode + one resize, same pixels as the transform
        options.setdefault("resize_size", resize_size)
    return "full", SamplePipeline(build_transform(EVAL_TRANSFORMS, name, image_size, options), image_size, spec,
                                  name=name)



