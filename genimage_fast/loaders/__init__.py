"""Loaders: records -> decoded uint8 batches on the device, behind one build_loader (DESIGN §4.4).

Backends (registry LOADERS): `cpu` (torch DataLoader + libjpeg-turbo DCT-scaled decode, reads every
record format), `ffcv` (FFCV Loader over .beton files), `dali` (DALI pipeline over webdataset shards,
nvJPEG on a GPU). All share one EpochPlanner, so they yield the same batches; see base.py for the
`auto` rule and plan.py for ordering, DDP sharding and resume.
"""

from genimage_fast.loaders import cpu as _cpu  # noqa: F401  (registers "cpu")
from genimage_fast.loaders import dali_loader as _dali  # noqa: F401  (registers "dali")
from genimage_fast.loaders import ffcv_loader as _ffcv  # noqa: F401  (registers "ffcv")
from genimage_fast.loaders.base import LOADERS, Loader, build_loader
from genimage_fast.loaders.batch import Batch
from genimage_fast.loaders.plan import BatchPlan, EpochPlanner
from genimage_fast.loaders.transforms import TransformSpec

__all__ = ["LOADERS", "Batch", "BatchPlan", "EpochPlanner", "Loader", "TransformSpec", "build_loader"]
