"""FFCV backend: FFCV's Loader over the split's .beton, in the planner's order, with our decoder.

Pipeline for the `image` field: a JIT-compiled FFCV decoder looks up each sample's data pointer
(any field type: BytesField for `original`/`match-real`, RGBImageField raw or jpg), then a
Python-mode FFCV Operation decodes the bytes, zero-copy from a memory map of the .beton, into the
planned crop with a thread pool
(decode.decode_sample: full-size libjpeg-turbo / OpenCV / PIL decode into the planned box, or the
loader's full-image pipeline on the host; all release the GIL). Why not FFCV's own image decoders:
FFCV has no PNG decoder, its JIT code cannot call PIL, its RandomResizedCrop draws its own crops
(the backends must share the planner's boxes) and `SimpleRGBImageDecoder` needs one image size per
batch, which `--max-side` records do not have.

The order is the planner's (a custom TraversalOrder), so FFCV yields exactly the cpu backend's
batches. FFCV reuses its output buffers, so each batch is copied out before it is handed on; CUDA
uploads go through the shared prefetcher (pinned memory, non_blocking copies on a side stream).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import torch

from genimage_fast.errors import GenImageError
from genimage_fast.loaders.base import LOADERS, Loader
from genimage_fast.loaders.decode import decode_sample
from genimage_fast.loaders.plan import BatchPlan
from genimage_fast.loaders.prefetch import host_copy


def _ffcv_missing() -> str | None:
    try:
        import ffcv.loader  # noqa: F401
    except Exception as err:  # ImportError, or a system library (OpenCV, libturbojpeg) failing to load
        return (f"ffcv does not import ({type(err).__name__}: {err}); "
                "pip install ffcv (needs libopencv-dev, libturbojpeg)")
    return None


def _pointer_decoder_class():
    """An FFCV decoder (JIT) emitting each sample's data pointer into the .beton, [B, 1] uint64.

    Copying the bytes themselves would need a [B, largest sample] buffer per batch slot (GiBs for
    1024² PNGs); the decode step reads them zero-copy from a memory map instead.
    """
    from ffcv.pipeline.allocation_query import AllocationQuery
    from ffcv.pipeline.compiler import Compiler
    from ffcv.pipeline.operation import Operation

    class StoredPointer(Operation):
        def __init__(self, rgb_field: bool) -> None:
            super().__init__()
            self.rgb_field = rgb_field

        def declare_state_and_memory(self, previous_state):
            return (replace(previous_state, jit_mode=True, shape=(1,), dtype="<u8"),
                    AllocationQuery((1,), dtype="<u8"))

        def generate_code(self) -> Callable:
            my_range = Compiler.get_iterator()
            # numba needs the record field name as a literal, hence two bodies.
            if self.rgb_field:
                def decoder(batch_indices, destination, metadata, storage_state):
                    for j in my_range(batch_indices.shape[0]):
                        destination[j, 0] = metadata[batch_indices[j]]["data_ptr"]
                    return destination
            else:
                def decoder(batch_indices, destination, metadata, storage_state):
                    for j in my_range(batch_indices.shape[0]):
                        destination[j, 0] = metadata[batch_indices[j]]["ptr"]
                    return destination
            return decoder

    return StoredPointer


def _plan_decode_class():
    """A Python-mode FFCV Operation: data pointers -> planned crops, [B, S, S, 3] uint8."""
    from ffcv.pipeline.allocation_query import AllocationQuery
    from ffcv.pipeline.operation import Operation

    class PlanDecode(Operation):
        def __init__(self, owner: FfcvLoader) -> None:
            super().__init__()
            self.owner = owner

        def declare_state_and_memory(self, previous_state):
            size = self.owner.image_size
            shape = (size, size, 3)
            return replace(previous_state, jit_mode=False, shape=shape, dtype=np.dtype("u1")), \
                AllocationQuery(shape, dtype=np.dtype("u1"))

        def generate_code(self) -> Callable:
            owner = self.owner

            def decode(pointers, destination, batch_indices):
                owner.decode_batch(pointers, destination, batch_indices)
                return destination[: len(batch_indices)]

            decode.with_indices = True  # FFCV passes batch_indices to functions that ask for them
            return decode

    return PlanDecode


@LOADERS.register("ffcv")
class FfcvLoader(Loader):
    name = "ffcv"
    formats = ("ffcv",)

    @staticmethod
    def missing() -> str | None:
        return _ffcv_missing()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from ffcv.reader import Reader

        self.path = str(self.split.files[0])
        try:
            reader = Reader(self.path)
        except Exception as err:
            raise GenImageError(f"{self.path}: not a readable .beton ({type(err).__name__}: {err})") from err
        fields = list(reader.handlers)
        if "image" not in fields:
            raise GenImageError(f"{self.path}: no 'image' field (fields: {', '.join(fields)})")
        image = reader.metadata[f"f{fields.index('image')}"]  # FFCV names metadata columns f0, f1, ...
        self._rgb = "data_ptr" in (image.dtype.names or ())
        ptrs = image["data_ptr"] if self._rgb else image["ptr"]
        sizes = dict(zip(reader.alloc_table["ptr"].tolist(), reader.alloc_table["size"].tolist(), strict=False))
        self._sizes = np.array([sizes[int(p)] for p in ptrs], dtype=np.int64)
        self._modes = np.asarray(image["mode"], dtype=np.int64) if self._rgb else None
        self._shapes = np.stack([image["height"], image["width"]], axis=1).astype(np.int64) if self._rgb else None
        self._int_fields = [name for name in fields if name != "image"]
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._plans: list[BatchPlan] = []  # this epoch's batches: FFCV decodes them in this order
        self._cursor = 0  # the next batch FFCV's thread decodes (crops by position: repeated copies differ)
        self._order = np.zeros(0, dtype=np.uint64)
        self._epoch = 0  # the epoch being decoded (full-image train transforms draw per (seed, epoch, index))
        self._failure: BaseException | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, self.num_workers), thread_name_prefix="ffcv-decode")
        self._ffcv = None  # built on first use: FFCV compiles the pipeline then

    def _sample(self, pointer: int, index: int) -> tuple[str, object]:
        data = self._map[pointer: pointer + self._sizes[index]]
        if self._rgb and self._modes[index] == 1:
            h, w = self._shapes[index]
            return "raw", data.reshape(h, w, 3)
        return "jpeg" if self._rgb else "png", data  # decode_crop sniffs JPEG vs PNG by magic bytes

    def decode_batch(self, pointers: np.ndarray, out: np.ndarray, batch_indices: np.ndarray) -> None:
        """Runs in FFCV's loader thread: never raise there (FFCV would hang), record instead."""
        size, epoch = self.image_size, self._epoch
        if self._cursor >= len(self._plans) or not np.array_equal(self._plans[self._cursor].indices,
                                                                   batch_indices.astype(np.int64)):
            with self._lock:
                self._failure = self._failure or GenImageError(
                    f"{self.path}: FFCV decoded batch {batch_indices[:4].tolist()}... out of the planned order")
            return
        plan = self._plans[self._cursor]
        self._cursor += 1
        boxes, flips = plan.boxes, plan.flips

        def one(j: int) -> None:
            index = int(batch_indices[j])
            try:
                kind, payload = self._sample(int(pointers[j, 0]), index)
                out[j] = decode_sample(kind, payload, boxes[j], size, bool(flips[j]), self.pipeline, index,
                                       epoch, self.fast_jpeg)
            except Exception as err:  # name the sample (e.g. a damaged lossless payload)
                raise GenImageError(f"{self.path}: cannot decode sample {index}: {type(err).__name__}: {err}") from err

        try:
            list(self._pool.map(one, range(len(batch_indices))))
        except GenImageError as err:
            with self._lock:
                self._failure = self._failure or err
        except Exception as err:
            with self._lock:
                self._failure = self._failure or GenImageError(
                    f"{self.path}: cannot decode a sample of batch {batch_indices[:4].tolist()}...: "
                    f"{type(err).__name__}: {err}")

    def _loader(self):
        if self._ffcv is None:
            from ffcv.loader import Loader as Ffcv
            from ffcv.traversal_order.base import TraversalOrder

            owner = self

            class PlannedOrder(TraversalOrder):
                # FFCV accepts an *instance* and calls it with the loader to get the order object.
                def __init__(self) -> None:  # bound to the FFCV loader in __call__
                    pass

                def __call__(self, loader) -> PlannedOrder:
                    TraversalOrder.__init__(self, loader)
                    return self

                def sample_order(self, epoch: int) -> np.ndarray:
                    return owner._order

            from ffcv.pipeline import PipelineSpec

            image = PipelineSpec("image", decoder=_pointer_decoder_class()(self._rgb),
                                 transforms=[_plan_decode_class()(self)])
            pipelines = {"image": image,
                         **{name: None for name in self._int_fields}}
            self._ffcv = Ffcv(self.path, batch_size=self.planner.batch_size, num_workers=max(1, self.num_workers),
                              order=PlannedOrder(), pipelines=pipelines, drop_last=False, os_cache=True,
                              batches_ahead=2)
        return self._ffcv

    def _images(self, plans: list[BatchPlan]) -> Iterator[torch.Tensor]:
        if not plans:
            return
        self._plans, self._cursor = plans, 0
        self._order = np.concatenate([p.indices for p in plans]).astype(np.uint64)
        self._epoch = plans[0].epoch
        self._failure = None
        iterator = iter(self._loader())
        try:
            for plan in plans:
                images = _next_batch(iterator, self.path)
                if self._failure is not None:
                    raise self._failure
                if len(images) != len(plan):
                    raise GenImageError(f"{self.path}: FFCV returned {len(images)} samples for a batch of {len(plan)}")
                # FFCV recycles its buffers: copy out before handing the batch on.
                # (straight into pinned memory on CUDA: the prefetcher then has nothing left to pin).
                yield host_copy(images, pin=self.device.type == "cuda").permute(0, 3, 1, 2)
            if self._failure is not None:
                raise self._failure
        finally:
            # Stop FFCV's thread before another epoch reuses the buffers and crop tables it reads;
            # it notices within a queue timeout (0.5 s) once its output queue is full.
            iterator.close()
            iterator.join(timeout=60)


def _next_batch(iterator, path: str) -> np.ndarray:
    """FFCV's EpochIterator.__next__, minus its hang: it blocks forever when its thread has died."""
    while True:
        try:
            item = iterator.output_queue.get(timeout=0.5)
            break
        except queue.Empty:
            if not iterator.is_alive():
                raise GenImageError(f"{path}: FFCV's loader thread stopped (its traceback is above)") from None
    if item is None:
        raise GenImageError(f"{path}: FFCV ended the epoch early")
    slot, (images,) = item
    if torch.cuda.is_available():  # as FFCV does: wait for the copy stream of that batch slot
        iterator.current_stream.wait_stream(iterator.cuda_streams[slot])
    return images
