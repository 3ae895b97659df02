"""`convert --protocol grommelt` against Grommelt et al.'s code (gendetection/UnbiasedGenImage).

Pinned settings, quoted:
- jpeg_augment.py:6  `image.save(outputIoStream, "JPEG", quality=qf, optimice=True)` (fakes, qf 96)
- compute_qf.py:7-24 closest IJG luminance table by mse_loss, `for i in range(100, -1, -1)`, `d <= d_best`
- ResNet50/pytorch-image-models-0.6.12/get_data.py:49-58 (SIZE_CONSTRAINED): reals with
  min_size <= width, height <= max_size and compression_rate == jpeg_qf; fakes
  `.sample(n=len(data_train_real), random_state=42)`
- Swin-T/Swin-Transformer-main/data/get_transform.py:36-38 `T.CenterCrop(args.cropsize)` (load time)
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.records import convert, open_records
from genimage_fast.records.grommelt import grommelt_quality, size_window
from genimage_fast.records.quality import estimate_jpeg_quality

# ITU T.81 Annex K luminance table, written out here (not imported) for the independent estimator.
IJG_LUMA = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=torch.float32)


def ijg_table(quality: int) -> torch.Tensor:
    """torchjpeg.quantization.ijg.get_coefficients_for_qualities for one quality (baseline clamp)."""
    if quality == 0:
        return torch.full((64,), 255.0)  # scale 5000/0: every entry clamps to 255
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2 * quality
    return torch.clamp(torch.floor((IJG_LUMA * scale + 50) / 100), 1, 255)


def compute_qf_reference(jpeg: bytes) -> int:
    """compute_qf.py's loop, on the luminance table PIL reads from the file."""
    table = torch.tensor(list(Image.open(io.BytesIO(jpeg)).quantization[0]), dtype=torch.float32)
    d_best, q_best = float("inf"), 0
    for i in range(100, -1, -1):
        d = torch.nn.functional.mse_loss(ijg_table(i), table).item()
        if d <= d_best:
            d_best, q_best = d, i
        else:
            break
    return q_best


def pil_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((width, height), Image.BICUBIC)


def test_quality_estimate_matches_their_method_at_every_quality():
    img = photo(64, 48, 0)
    for q in range(1, 101):
        data = pil_jpeg(img, q)
        assert grommelt_quality(data) == compute_qf_reference(data), q
        # Our libjpeg estimator agrees except at q=1, whose table their q=0 ties (ties go lower there).
        assert estimate_jpeg_quality(data) == q
        assert grommelt_quality(data) == (0 if q == 1 else q)


def test_size_windows():
    assert size_window(512) == (450, 550)  # their example
    assert size_window(256) == (225, 275) and size_window(1024) == (900, 1100) and size_window(128) == (112, 138)


# (name, width, height, quality): which reals a 512-px subset keeps is q == 96 and 450..550 both ways.
SDV4_REALS = [
    ("n01440764_1.JPEG", 500, 500, 96), ("n01440764_2.JPEG", 450, 550, 96), ("n01440764_3.JPEG", 500, 375, 96),
    ("n01440764_4.JPEG", 500, 500, 90), ("n01443537_5.JPEG", 551, 500, 96), ("n01443537_6.JPEG", 520, 480, 96),
    ("n01443537_7.JPEG", 500, 500, 95),
]
ADM_REALS = [("n01440764_8.JPEG", 250, 260, 96), ("n01440764_9.JPEG", 500, 375, 96),
             ("n01443537_10.JPEG", 240, 240, 75)]


def _tree(root, subset, native, reals, fakes_per_class, fake_ext):
    for split in ("train", "val"):
        for label in ("ai", "nature"):
            (root / subset / split / label).mkdir(parents=True)
    seed = 0
    for name, w, h, q in reals:
        seed += 1
        (root / subset / "train" / "nature" / name).write_bytes(pil_jpeg(photo(w, h, seed), q))
    val_real = root / subset / "val" / "nature" / "ILSVRC2012_val_00000001.JPEG"
    val_real.write_bytes(pil_jpeg(photo(native, native, 99), 96))  # in the window at any native size
    token = subset.split("_")[-1]
    for cls in (0, 1):
        for i in range(fakes_per_class):
            seed += 1
            name = f"{cls:03d}_{token}_{i:05d}.{fake_ext}"
            photo(native, native, seed).save(root / subset / "train" / "ai" / name, "PNG")
    for i in range(3):
        name = f"000_{token}_{90 + i:05d}.{fake_ext}"
        photo(native, native, 500 + i).save(root / subset / "val" / "ai" / name, "PNG")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    _tree(root, "imagenet_ai_0419_sdv4", 512, SDV4_REALS, 4, "png")
    _tree(root, "imagenet_ai_0508_adm", 256, ADM_REALS, 2, "PNG")
    out = tmp_path_factory.mktemp("rec") / "records"
    convert(root, out, fmt="dali", protocol="grommelt", progress=False)
    return root, open_records(out)


def _meta_rows(rs, split):
    sp = rs.split(split)
    return sp, [(sp.meta["path"][i], int(sp.meta["label"][i]), int(sp.meta["generator"][i])) for i in range(len(sp))]


def test_selected_reals_are_exactly_q96_inside_the_window(records):
    root, rs = records
    _, rows = _meta_rows(rs, "train")
    reals = sorted(p.split("/")[-1] for p, label, _ in rows if label == 0)
    expected = sorted(n for n, w, h, q in SDV4_REALS if q == 96 and 450 <= w <= 550 and 450 <= h <= 550)
    expected += sorted(n for n, w, h, q in ADM_REALS if q == 96 and 225 <= w <= 275 and 225 <= h <= 275)
    assert reals == sorted(expected)


def test_fakes_are_pil_q96_of_the_source_and_counts_match(records):
    root, rs = records
    for split in ("train", "val"):
        sp, rows = _meta_rows(rs, split)
        for gen in {g for _, _, g in rows}:
            n_real = sum(1 for _, lab, g in rows if lab == 0 and g == gen)
            n_fake = sum(1 for _, lab, g in rows if lab == 1 and g == gen)
            subset = "imagenet_ai_0419_sdv4" if gen == 1 else "imagenet_ai_0508_adm"
            available = len(list((root / subset / split / "ai").iterdir()))
            assert n_fake == min(n_real, available), (split, gen)
        for i, (path, label, _) in enumerate(rows):
            kind, payload = sp.read_encoded(i)
            source = (root / path).read_bytes()
            if label == 0:
                assert kind == "jpeg" and bytes(payload) == source  # reals keep their bytes
            else:
                with Image.open(root / path) as im:
                    assert kind == "jpeg" and bytes(payload) == pil_jpeg(im.convert("RGB"), 96)


def test_manifest_records_the_protocol(records):
    _, rs = records
    proto = rs.manifest["protocol"]
    assert proto["name"] == "grommelt" and proto["fake_jpeg_quality"] == 96 and proto["seed"] == 42
    assert proto["size_windows"] == {"sdv14": [450, 550], "adm": [225, 275]}
    assert proto["center_crop"] == {"sdv14": 450, "adm": 225}
    assert rs.manifest["store"] == "fakes-jpeg:96"
    json.dumps(rs.manifest)


def test_protocol_rejects_other_stores(tmp_path):
    with pytest.raises(GenImageError, match="leave --store at original"):
        convert(tmp_path, tmp_path / "o", fmt="dali", store="raw", protocol="grommelt", progress=False)
    with pytest.raises(GenImageError, match="unknown protocol"):
        convert(tmp_path, tmp_path / "o", fmt="dali", protocol="gromelt", progress=False)


def test_loader_centre_crops_to_min_size_first(records):
    """Load time: CenterCrop(min_size) (their get_transform.py:36-38), then the detector's transform."""
    from torchvision import transforms

    from genimage_fast.loaders import build_loader

    root, rs = records
    sp = rs.split("val")
    windows = rs.manifest["protocol"]["center_crop"]
    names = {1: "sdv14", 3: "adm"}
    exact = build_loader(rs, backend="cpu", train=False, image_size=224, batch_size=64, num_workers=0,
                         eval_transform="cnndetection")  # full path: crop, then CenterCrop(224)
    box = build_loader(rs, backend="cpu", train=False, image_size=64, batch_size=64, num_workers=0)
    for loader, size in ((exact, 224), (box, 64)):
        batch = next(iter(loader))
        for row, index in enumerate(batch.indices.tolist()):
            img = Image.fromarray(sp.read_image(index))  # the stored pixels (fakes: their q96 JPEG)
            c = windows[names[int(sp.meta["generator"][index])]]
            framed = transforms.CenterCrop(c)(img)
            if size == 224:
                expected = np.asarray(transforms.CenterCrop(224)(framed))
            else:  # resize_centre: Resize(round(64 / 0.875) = 73, antialiased bilinear), CenterCrop(64)
                expected = np.asarray(transforms.CenterCrop(64)(transforms.Resize(73)(framed)))
            got = batch.images[row].permute(1, 2, 0).numpy()
            diff = np.abs(got.astype(int) - expected.astype(int))
            if size == 224:
                assert diff.max() == 0, index
            else:
                assert diff.mean() <= 0.5 and diff.max() <= 2, (index, diff.mean(), diff.max())



@pytest.mark.parametrize("workers", [0, 2])
def test_device_eval_path_centre_crops_before_the_degradation(records, monkeypatch, workers):
    """The CUDA source-space path (loaders/device_eval.py), forced on the CPU with torchvision's CPU
    decode standing in for nvJPEG: CenterCrop(min_size) first, then Task 2's JPEG on the cropped image
    (PIL's save), then the detector's transform - for the nvJPEG-routed q96 fakes and reals alike."""
    from torchvision import transforms
    from torchvision.io import ImageReadMode, decode_jpeg

    from genimage_fast.loaders import build_loader, device_eval, gpu_decode

    monkeypatch.setattr(device_eval, "applies", lambda loader: loader.pipeline is not None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_missing", lambda device="cuda": None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_decoder",
                        lambda device: lambda datas: list(decode_jpeg(datas, mode=ImageReadMode.RGB)))
    root, rs = records
    sp = rs.split("val")
    windows = rs.manifest["protocol"]["center_crop"]
    names = {1: "sdv14", 3: "adm"}
    loader = build_loader(rs, backend="cpu", train=False, image_size=224, batch_size=3, num_workers=workers,
                          eval_transform="cnndetection", degrade="jpeg:65")
    assert loader.pipeline_on == "device"
    for batch in loader:
        for row, index in enumerate(batch.indices.tolist()):
            framed = transforms.CenterCrop(windows[names[int(sp.meta["generator"][index])]])(
                Image.fromarray(sp.read_image(index)))
            buf = io.BytesIO()
            framed.save(buf, format="jpeg", quality=65)
            expected = np.asarray(transforms.CenterCrop(224)(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
            assert np.array_equal(batch.images[row].permute(1, 2, 0).numpy(), expected), index

def test_unbiased_recipes_are_the_genimage_recipes_with_their_batch(tmp_path):
    """UnbiasedGenImage ResNet50/README.md (-b 128 on distributed_train.sh 2) and Swin-T/README.md
    (--batch-size 128, --nproc_per_node=2): 2 x 128; everything else is GenImage's recipe."""
    from pathlib import Path

    from genimage_fast.config import config_to_dict, load_config

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    for name in ("resnet50", "swin_t"):
        base = config_to_dict(load_config(recipes / f"{name}.yaml"))
        ours = config_to_dict(load_config(recipes / "unbiased" / f"{name}.yaml"))
        assert ours["train"]["batch_size"] == 128 and ours["train"]["global_batch_size"] == 256
        assert ours["data"]["generators"] == ["sdv14"] and ours["recipe"] == f"unbiased_{name}"
        for section in ("model", "optim", "schedule", "loss", "aug"):
            assert ours[section] == base[section], section
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(GenImageError, match="includes itself"):
        load_config(tmp_path / "a.yaml")


def test_protocol_on_demo_data_selects_what_their_rules_select(tmp_path):
    """demo-data's reals (varied sizes, mostly q96): kept = q96 (their estimator) inside each subset's window."""
    from genimage_fast.generators import GENERATORS
    from genimage_fast.sources import make_demo_data, scan_tree

    demo = make_demo_data(tmp_path / "demo", classes=2, per_class=3)
    convert(demo, tmp_path / "rec", fmt="dali", protocol="grommelt", progress=False)
    rs = open_records(tmp_path / "rec")
    expected: dict[str, set[str]] = {}
    for s in scan_tree(demo).samples:
        if s.label != 0:
            continue
        data = s.path.read_bytes()
        with Image.open(s.path) as im:
            w, h = im.size
        lo, hi = round(GENERATORS[s.generator].size * 450 / 512), round(GENERATORS[s.generator].size * 550 / 512)
        if compute_qf_reference(data) == 96 and lo <= w <= hi and lo <= h <= hi:
            expected.setdefault(s.split, set()).add(s.relpath)
    for split in rs.splits:
        sp = rs.split(split)
        got = {sp.meta["path"][i] for i in range(len(sp)) if sp.meta["label"][i] == 0}
        assert got == expected.get(split, set()), split
    assert sum(len(v) for v in expected.values()) > 0  # the demo has reals the protocol keeps


def test_balanced_protocol_keeps_per_class_min_of_each(tmp_path):
    """get_data.py:10-20 balance_per_class: per class, min(reals, fakes) of each, random_state=42."""
    root = tmp_path / "src"
    _tree(root, "imagenet_ai_0419_sdv4", 512, SDV4_REALS, 4, "png")
    convert(root, tmp_path / "rec", fmt="dali", protocol="grommelt-balanced", progress=False)
    sp = open_records(tmp_path / "rec").split("train")
    per = {}
    for i in range(len(sp)):
        key = (int(sp.meta["class_id"][i]), int(sp.meta["label"][i]))
        per[key] = per.get(key, 0) + 1
    reals = {}
    for name, w, h, q in SDV4_REALS:  # n01440764 = class 0, n01443537 = class 1
        if q == 96 and 450 <= w <= 550 and 450 <= h <= 550:
            cls = 0 if name.startswith("n01440764") else 1
            reals[cls] = reals.get(cls, 0) + 1
    for cls, n_real in reals.items():
        assert per.get((cls, 0)) == per.get((cls, 1)) == min(n_real, 4), (cls, per)
