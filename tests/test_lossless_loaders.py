"""Every backend over `lossless` records: full-size decode equals PIL's decode of the source file, and
train batches equal those over `original` records bit for bit (same seed, same crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from genimage_fast.errors import GenImageError
from genimage_fast.loaders import LOADERS, build_loader
from genimage_fast.records import convert, open_records
from tests.test_lossless import ConvertedOnDemand, _modes_tree

BACKENDS = [("cpu", "dali"), ("cpu", "ffcv"), ("ffcv", "ffcv"), ("dali", "dali")]


def _available(backend: str) -> None:
    why = LOADERS.get(backend).missing()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def modes(tmp_path_factory):
    tree = _modes_tree(tmp_path_factory.mktemp("modes_l") / "genimage")
    return tree, ConvertedOnDemand(tmp_path_factory, tree, store="lossless")  # {fmt: lossless records}


def _centre_crops(records: Path, tree: Path, backend: str, split: str, size: int):
    """(batches, references): CNNDetection's eval transform (no resize, CenterCrop with zero padding)
    shows the full-size decode untouched; the reference is torchvision's CenterCrop of PIL's decode
    (CNNDetection-master/data/datasets.py:29 `transforms.CenterCrop(opt.cropSize)`)."""
    loader = build_loader(records, backend=backend, batch_size=8, train=False, image_size=size, num_workers=1,
                          split=split, eval_transform="cnndetection")
    paths = open_records(records).split(split).meta["path"]
    got, want = [], []
    for batch in loader:
        got.append(batch.images.permute(0, 2, 3, 1).numpy())
        for i in batch.indices.tolist():
            with Image.open(tree / paths[i]) as image:
                want.append(np.asarray(T.CenterCrop(size)(image.convert("RGB"))))
    return np.concatenate(got), np.stack(want)


@pytest.mark.parametrize(("backend", "fmt"), BACKENDS)
def test_full_size_decode_equals_pil_on_every_mode(backend, fmt, modes):
    _available(backend)
    tree, records = modes
    for split in ("train", "val"):
        got, want = _centre_crops(records[fmt], tree, backend, split, 64)  # every source < 64 px: all of it
        assert got.shape == want.shape and np.array_equal(got, want), (backend, fmt, split)


@pytest.mark.parametrize(("backend", "fmt"), BACKENDS)
def test_full_size_decode_equals_pil_on_demo_data(backend, fmt, make_records, demo_tree):
    _available(backend)
    got, want = _centre_crops(make_records(fmt, "lossless"), demo_tree, backend, "val", 96)
    assert np.array_equal(got, want)


def _train_batches(records: Path, backend: str, seed: int) -> list[torch.Tensor]:
    loader = build_loader(records, backend=backend, batch_size=16, train=True, image_size=48, num_workers=1,
                          seed=seed)
    loader.set_epoch(1)
    return [torch.cat([b.images.contiguous(), b.labels.view(-1, 1, 1, 1).expand(-1, 3, 48, 1).to(torch.uint8)], 3)
            for b in loader][:3]


@pytest.mark.parametrize(("backend", "fmt"), BACKENDS)
def test_train_batches_equal_original_records(backend, fmt, make_records):
    """Same pixels in, same crops: RandomResizedCrop + flip batches are bit-identical (dali too: its
    CPU decoder gives PIL's pixels and the same fn.resize runs on both)."""
    _available(backend)
    lossless = _train_batches(make_records(fmt, "lossless"), backend, seed=3)
    original = _train_batches(make_records(fmt, "original"), backend, seed=3)
    assert len(lossless) == len(original) > 0
    for a, b in zip(lossless, original, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["cpu", "dali"])  # conftest skips dali where it is missing
def test_damaged_record_names_shard_and_sample(tmp_path, modes, backend):
    tree, _ = modes
    out = tmp_path / "rec"
    convert(tree, out, fmt="dali", store="lossless", progress=False)
    shard = open_records(out).split("val").files[0]
    from genimage_fast.records.tarshard import read_index

    offset, size = read_index(shard.with_suffix(".idx"))[0].members["lossless"]
    data = bytearray(shard.read_bytes())
    data[offset + size // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    loader = build_loader(out, backend=backend, batch_size=4, train=False, image_size=32, num_workers=0)
    with pytest.raises(GenImageError, match=rf"{shard.name}: cannot read sample 0: LosslessError: corrupt"):
        list(loader)


def test_damaged_beton_sample_names_file_and_sample(tmp_path, modes):
    _available("ffcv")
    tree, _ = modes
    out = tmp_path / "rec"
    convert(tree, out, fmt="ffcv", store="lossless", progress=False)
    part = open_records(out).split("val")
    _, payload = part.read_encoded(3)
    beton = part.files[0]
    data = bytearray(beton.read_bytes())
    offset = bytes(data).find(bytes(payload))
    assert offset > 0
    data[offset + len(payload) // 2] ^= 0x04
    beton.write_bytes(bytes(data))
    with pytest.raises(GenImageError, match=rf"{beton.name}: sample 3 of split 'val': corrupt lossless payload"):
        open_records(out).split("val").read_image(3)
    for backend in ("ffcv", "cpu"):
        loader = build_loader(out, backend=backend, batch_size=4, train=False, image_size=32, num_workers=1)
        with pytest.raises(GenImageError, match=rf"{beton.name}: cannot (decode|read) sample 3: LosslessError"):
            list(loader)
