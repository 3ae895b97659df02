"""build_loader over real record sets: the three backends agree, DDP, filters, errors, prefetch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import backend_missing, backend_param, requires_backend, requires_cuda

from genimage_fast.errors import GenImageError
from genimage_fast.loaders import LOADERS, Batch, build_loader
from genimage_fast.records import open_records

SIZE = 48  # tiny crops keep the suite fast; the demo images are 128..1024 px


def _epoch(loader) -> dict[str, torch.Tensor]:
    batches = list(loader)
    for b in batches:
        assert isinstance(b, Batch)
        assert b.images.dtype == torch.uint8 and b.images.shape[1:] == (3, loader.image_size, loader.image_size)
        assert all(t.dtype == torch.int64 and t.shape == (len(b),) for t in
                   (b.labels, b.generators, b.class_ids, b.indices))
    return {key: torch.cat([getattr(b, key) for b in batches])
            for key in ("images", "labels", "generators", "class_ids", "indices")}


def _mean_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.int() - b.int()).abs().float().mean().item()


@pytest.mark.parametrize("fmt,backend", [backend_param("dali", "dali"), backend_param("ffcv", "ffcv")])
def test_backends_agree_with_cpu_in_eval(make_records, fmt, backend):
    records = make_records(fmt)
    cpu = _epoch(build_loader(records, backend="cpu", batch_size=16, train=False, image_size=SIZE, num_workers=0))
    native = _epoch(build_loader(records, backend=backend, batch_size=16, train=False, image_size=SIZE,
                                 num_workers=2))
    meta = open_records(records).split("val").meta
    n = len(meta["label"])
    assert cpu["indices"].tolist() == list(range(n))  # eval: sequential, nothing dropped
    for key in ("indices", "labels", "generators", "class_ids"):
        assert torch.equal(cpu[key], native[key]), key
    assert torch.equal(cpu["labels"], torch.from_numpy(np.array(meta["label"])))
    assert torch.equal(cpu["generators"], torch.from_numpy(np.array(meta["generator"])))
    assert _mean_abs(cpu["images"], native["images"]) <= 0.5  # one full-size decode chain (issue #12)


@requires_backend("dali")
def test_formats_and_store_modes_agree(make_records):
    """The same tree as .beton or shards, original or raw: same samples, near-identical pixels."""
    dali = _epoch(build_loader(make_records("dali"), backend="cpu", batch_size=16, train=False, image_size=SIZE,
                               num_workers=0))
    ffcv = _epoch(build_loader(make_records("ffcv"), backend="cpu", batch_size=16, train=False, image_size=SIZE,
                               num_workers=0))
    raw = _epoch(build_loader(make_records("dali", "raw"), backend="dali", batch_size=16, train=False,
                              image_size=SIZE, num_workers=1))
    for key in ("indices", "labels", "generators", "class_ids"):
        assert torch.equal(dali[key], ffcv[key]) and torch.equal(dali[key], raw[key]), key
    assert torch.equal(dali["images"], ffcv["images"])  # same bytes, same decoder
    assert _mean_abs(dali["images"], raw["images"]) <= 2.0


@requires_backend("dali")
def test_train_mode_backends_yield_the_same_batches(make_records):
    kwargs = dict(batch_size=8, train=True, image_size=SIZE, seed=7)
    cpu = build_loader(make_records("dali"), backend="cpu", num_workers=2, **kwargs)
    dali = build_loader(make_records("dali"), backend="dali", num_workers=1, **kwargs)
    a, b = _epoch(cpu), _epoch(dali)
    n = len(open_records(make_records("dali")).split("train"))
    assert len(cpu) == n // 8 and cpu.num_samples == n // 8 * 8 == len(a["indices"])
    assert a["indices"].tolist() != sorted(a["indices"].tolist())  # shuffled
    for key in ("indices", "labels", "generators", "class_ids"):
        assert torch.equal(a[key], b[key]), key
    assert _mean_abs(a["images"], b["images"]) <= 0.5  # same planned crops and flips, same decode
    again = _epoch(cpu)  # next epoch: another order
    assert not torch.equal(a["indices"], again["indices"])


def test_set_epoch_is_reproducible_and_resumes_exactly(make_records):
    loader = build_loader(make_records("dali"), backend="cpu", batch_size=8, train=True, image_size=32,
                          num_workers=0, seed=3)
    loader.set_epoch(2)
    full = list(loader)
    loader.set_epoch(2, start_batch=2)
    tail = list(loader)
    assert len(tail) == len(full) - 2
    for x, y in zip(full[2:], tail, strict=True):
        assert torch.equal(x.indices, y.indices) and torch.equal(x.images, y.images)
    other = build_loader(make_records("dali"), backend="cpu", batch_size=8, train=True, image_size=32,
                         num_workers=2, seed=3)  # worker count does not change anything
    other.set_epoch(2)
    assert all(torch.equal(x.images, y.images) for x, y in zip(full, other, strict=True))


def test_ddp_ranks_are_disjoint_and_equal(make_records):
    shares = []
    for rank in range(3):
        loader = build_loader(make_records("dali"), backend="cpu", batch_size=4, train=True, image_size=16,
                              num_workers=0, rank=rank, world_size=3)
        shares.append(_epoch(loader)["indices"])
    assert len({len(s) for s in shares}) == 1
    flat = torch.cat(shares).tolist()
    assert len(flat) == len(set(flat))


def test_generator_filter(make_records):
    loader = build_loader(make_records("dali"), backend="cpu", batch_size=4, train=False, image_size=16,
                          num_workers=0, generators=["sdv14"])
    out = _epoch(loader)
    assert set(out["generators"].tolist()) == {1}
    assert set(out["labels"].tolist()) == {0, 1}  # a subset's reals come with its fakes
    meta = open_records(make_records("dali")).split("val").meta
    assert len(out["indices"]) == int((np.array(meta["generator"]) == 1).sum())
    same = build_loader(make_records("dali"), backend="cpu", batch_size=4, train=False, image_size=16,
                        num_workers=0, generators=[1])
    assert same.num_samples == loader.num_samples


def test_auto_rule_and_clear_errors(make_records):
    # auto: the format's own backend when its library imports, else cpu (a box without DALI / ffcv)
    native = "cpu" if backend_missing("dali") else "dali"
    assert isinstance(build_loader(make_records("dali"), train=False, image_size=16), LOADERS.get(native))
    if not backend_missing("ffcv"):  # .beton records can only be written with ffcv installed
        assert isinstance(build_loader(make_records("ffcv"), train=False, image_size=16), LOADERS.get("ffcv"))
        with pytest.raises(GenImageError, match="cannot read ffcv records"):
            build_loader(make_records("ffcv"), backend="dali")
    with pytest.raises(GenImageError, match="unknown loader backend"):
        build_loader(make_records("dali"), backend="dal")
    with pytest.raises(GenImageError, match="no 'test' split"):
        build_loader(make_records("dali"), split="test")
    with pytest.raises(GenImageError, match="unknown generator"):
        build_loader(make_records("dali"), generators=["sdv9"])
    with pytest.raises(GenImageError, match="rank"):
        build_loader(make_records("dali"), rank=2, world_size=2)


def _corrupt_first_png(records: Path, out: Path) -> Path:
    """A copy of the records whose first PNG payload (in the val shard) is overwritten with junk."""
    shutil.copytree(records, out)
    split = open_records(out).split("val")
    index = next(i for i in range(len(split)) if split.read_encoded(i)[0] == "png")
    data = split.read_encoded(index)[1]
    shard = split.files[0]
    blob = bytearray(shard.read_bytes())
    start = blob.find(bytes(data[:64]))
    blob[start + 40:start + len(data) - 40] = b"\x00" * (len(data) - 80)  # keep the signature, kill IDAT
    shard.write_bytes(bytes(blob))
    return shard


@pytest.mark.parametrize("backend,workers", [("cpu", 0), ("cpu", 1), backend_param("dali", 1)])
def test_corrupt_shard_error_names_the_shard(make_records, tmp_path, backend, workers):
    shard = _corrupt_first_png(make_records("dali"), tmp_path / "rec")
    loader = build_loader(tmp_path / "rec", backend=backend, batch_size=8, train=False, image_size=16,
                          num_workers=workers)
    with pytest.raises(GenImageError, match=shard.name):
        list(loader)


@requires_backend("ffcv")
def test_corrupt_beton_error_names_the_file(make_records, tmp_path):
    beton = _corrupt_first_png(make_records("ffcv"), tmp_path / "rec")
    loader = build_loader(tmp_path / "rec", backend="ffcv", batch_size=8, train=False, image_size=16,
                          num_workers=1)
    with pytest.raises(GenImageError, match=beton.name):
        list(loader)


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cpu", backend_param("dali")])
def test_cuda_batches_arrive_on_the_device_and_match(make_records, backend):
    records = make_records("dali")
    host = _epoch(build_loader(records, backend=backend, batch_size=8, train=False, image_size=SIZE, num_workers=1))
    gpu = list(build_loader(records, backend=backend, batch_size=8, train=False, image_size=SIZE, num_workers=1,
                            device="cuda"))
    assert all(b.images.is_cuda for b in gpu)
    images = torch.cat([b.images.cpu() for b in gpu])
    assert _mean_abs(images, host["images"]) <= 2.0  # nvJPEG vs libjpeg-turbo: rounding only


@requires_backend("ffcv")
def test_ffcv_epoch_after_an_early_break_is_complete_and_planned(make_records):
    kwargs = dict(batch_size=8, train=True, image_size=16, seed=1)
    ffcv = build_loader(make_records("ffcv"), backend="ffcv", num_workers=1, **kwargs)
    for _ in ffcv:
        break  # abandons epoch 0 mid-way
    ffcv.set_epoch(1)
    cpu = build_loader(make_records("ffcv"), backend="cpu", num_workers=0, **kwargs)
    cpu.set_epoch(1)
    a, b = _epoch(ffcv), _epoch(cpu)
    assert torch.equal(a["indices"], b["indices"]) and _mean_abs(a["images"], b["images"]) <= 2.0
