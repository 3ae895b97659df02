"""`eval` really degrades the test images themselves (--degrade-at source, issue #12), and says how.

A fixed "model" scores each image by a known function of its input (the mean absolute Laplacian, a
sharpness measure), so the score of every image under every spec can be recomputed from an
independent pipeline written here with PIL / scipy / torchvision, as the original code writes it:
- decode: PIL `Image.open(...).convert("RGB")` of the stored file bytes, full size;
- `jpeg:Q`: GenImage-Dataset/GenImage detector_codes/CNNDetection-master/data/datasets.py:111-118
  (`pil_jpg`: `img.save(out, format='jpeg', quality=compress_val)`, reopened; PIL's default 4:2:0);
- `blur:SIGMA`: same file, lines 97-100 (`gaussian_filter(img[:,:,c], output=img[:,:,c], sigma=sigma)`
  on the uint8 planes, so scipy truncates to uint8), σ in pixels of the full image;
- `lr:S`: the whole image squashed to S×S, antialiased bilinear (PIL `resize((S, S), BILINEAR)`,
  DESIGN §4.2);
- then the run's eval transform, here `timm_vit`: detector_codes/deit-main/datasets.py:101-105
  (`transforms.Resize(int(input_size / eval_crop_ratio), interpolation=3)`, `CenterCrop(input_size)`,
  eval_crop_ratio 0.875), called through torchvision on the PIL image.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn
from torchvision import transforms

from genimage_fast.cli import main
from genimage_fast.config import config_from_dict, config_to_dict
from genimage_fast.engine.evaluate import LoadedRun, evaluate, score_records
from genimage_fast.records import open_records

IMAGE_SIZE = 48
SPECS = ["none", "lr:64", "jpeg:30", "blur:3"]
SCALE = 20.0  # logit = SCALE * mean |Laplacian|: sigmoid stays well away from 0 and 1 (exact inverse)
# Per-image tolerance on the mean |Laplacian| (of images in [0, 1]) between eval and the reference:
# on the CPU path the model sees the reference's very pixels (measured: <= 3e-7, the float32 sigmoid
# round trip), while the specs' images differ from each other by 1e-3 and more.
TOLERANCE = 1e-5
# The device path's resamplers are Pillow's fixed point per pass, but Pillow 13's pass order is measured,
# not read (device_transforms.vertical_first): a few images move by a level here and there. Measured on
# the demo val split: max 1.0e-4, mean 1.6e-6 per spec.
DEVICE_TOLERANCE = 3e-4


class MeanAbsLaplacian(nn.Module):
    """A fixed detector: one logit per image, SCALE x the mean absolute 4-neighbour Laplacian."""

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        self.register_buffer("kernel", kernel.expand(3, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lap = nn.functional.conv2d(x.double(), self.kernel.double(), groups=3)  # valid region only
        return (SCALE * lap.abs().mean(dim=(1, 2, 3))).unsqueeze(1).float()


def mean_abs_laplacian(image: np.ndarray) -> float:
    """The same function, written on a HWC uint8 array with numpy slicing."""
    x = image.astype(np.float64) / 255.0
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.abs(lap).mean())


def reference_image(kind: str, payload, spec: str) -> np.ndarray:
    """PIL decode -> the spec on the full image (PIL / scipy) -> timm_vit's eval transform (torchvision)."""
    if kind == "raw":
        image = Image.fromarray(np.asarray(payload))
    else:
        image = Image.open(io.BytesIO(bytes(payload))).convert("RGB")
    name, _, value = spec.partition(":")
    if name == "lr":
        image = image.resize((int(value), int(value)), Image.BILINEAR)
    elif name == "jpeg":
        out = io.BytesIO()
        image.save(out, format="jpeg", quality=int(value))
        image = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    elif name == "blur":
        img = np.array(image)
        for c in range(3):
            gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=float(value))
        image = Image.fromarray(img)
    transform = transforms.Compose([transforms.Resize(int(IMAGE_SIZE / 0.875), interpolation=3),
                                    transforms.CenterCrop(IMAGE_SIZE)])
    return np.asarray(transform(image))


def _probe(eval_transform: str = "timm_vit") -> LoadedRun:
    cfg = config_from_dict({"recipe": "probe", "model": {"name": "demo_cnn"},
                            "data": {"image_size": IMAGE_SIZE, "backend": "cpu", "num_workers": 0,
                                     "eval_transform": eval_transform},
                            "train": {"precision": "fp32", "device": "cpu"}})
    return LoadedRun(MeanAbsLaplacian().eval(), cfg, Path("probe.pt"), "logit", "last")


def _laplacian_from_scores(scores: np.ndarray) -> np.ndarray:
    p = scores.astype(np.float64)
    return np.log(p / (1 - p)) / SCALE


@pytest.fixture(scope="module")
def scored(make_records):
    records = open_records(make_records("dali"))
    torch.set_num_threads(1)
    loaded = _probe()
    source, protocol = score_records(loaded, records, SPECS, degrade_at="source", batch_size=16, backend="cpu")
    crop, crop_protocol = score_records(loaded, records, SPECS, degrade_at="crop", batch_size=16, backend="cpu")
    split = records.split("val")
    reference = {spec: np.array([mean_abs_laplacian(reference_image(*split.read_encoded(int(i)), spec))
                                 for i in source.indices]) for spec in SPECS}
    return source, crop, reference, protocol, crop_protocol, split


def test_source_scores_are_the_function_of_independently_degraded_images(scored) -> None:
    source, _, reference, protocol, _, split = scored
    sizes = {(int(split.meta["width"][i]), int(split.meta["height"][i])) for i in source.indices}
    assert {(512, 512), (1024, 1024)} <= sizes and len(sizes) > 10  # real photos of many sizes, big PNG fakes
    for spec in SPECS:
        ours = _laplacian_from_scores(source.scores[spec])
        assert np.abs(ours - reference[spec]).max() < TOLERANCE, spec
    for a in SPECS:  # the tolerance separates the specs: each spec's scores match its own images only
        for b in SPECS:
            if a != b:
                assert np.abs(_laplacian_from_scores(source.scores[a]) - reference[b]).max() > 10 * TOLERANCE, (a, b)
    assert source.scores["blur:3"].mean() < source.scores["none"].mean()
    assert (reference["blur:3"] < reference["none"]).all()
    assert protocol["degrade_at"] == "source" and protocol["eval_transform"] == "timm_vit"
    assert protocol["decoder"] == "full" and protocol["backend"] == "cpu"


def test_crop_mode_is_todays_path_and_differs(scored) -> None:
    source, crop, reference, _, crop_protocol, _ = scored
    assert np.array_equal(crop.indices, source.indices)
    np.testing.assert_allclose(crop.scores["none"], source.scores["none"], atol=1e-6)  # same clean pipeline
    # degrading the 48-px crop is not degrading the image: σ=3 on the crop is a far stronger blur,
    # JPEG's grid sits on the crop, and lr:64 >= 48 leaves the crop as it was
    for spec in ("lr:64", "jpeg:30", "blur:3"):
        ours = _laplacian_from_scores(crop.scores[spec])
        assert np.abs(ours - reference[spec]).mean() > 100 * TOLERANCE, spec
    np.testing.assert_array_equal(crop.scores["lr:64"], crop.scores["none"])
    assert crop_protocol["degrade_at"] == "crop"


def _checkpoint(path: Path, eval_transform: str | None = None) -> Path:
    from genimage_fast.models import create_model

    data = {"image_size": 32, "backend": "cpu", "num_workers": 0}
    if eval_transform:
        data["eval_transform"] = eval_transform
    cfg = config_from_dict({"recipe": "demo", "model": {"name": "demo_cnn"}, "data": data,
                            "train": {"precision": "fp32", "device": "cpu"}})
    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"model": create_model("demo_cnn").state_dict(), "config": config_to_dict(cfg)}, path / "last.pt")
    return path / "last.pt"


def test_results_record_the_protocol(make_records, tmp_path: Path) -> None:
    records = make_records("dali")
    ckpt = _checkpoint(tmp_path / "run" / "checkpoints")
    results = evaluate(tmp_path / "run", records, degrade="none,jpeg:65", out=tmp_path / "eval", batch_size=32)
    on_disk = json.loads((tmp_path / "eval" / "results.json").read_text())
    protocol = on_disk["protocol"]
    assert {"degrade_at", "eval_transform", "decoder", "backend", "selection"} <= set(protocol)
    assert protocol == results["protocol"]
    assert (protocol["degrade_at"], protocol["eval_transform"], protocol["decoder"], protocol["backend"],
            protocol["selection"], protocol["store"]) == ("source", "resize_centre", "full", "cpu", "last", "original")
    md = (tmp_path / "eval" / "results.md").read_text()
    assert "- protocol: degradations on the full decoded test image (--degrade-at source" in md
    assert "eval transform `resize_centre`" in md and "last.pt (no checkpoint selection)" in md
    crop = evaluate(ckpt, records, degrade="none,jpeg:65", batch_size=32, degrade_at="crop")
    assert crop["protocol"]["degrade_at"] == "crop" and crop["protocol"]["selection"] == "last"
    assert crop["accuracy"]["none"] == results["accuracy"]["none"]


def test_bad_input_is_one_line_exit_2(make_records, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = str(make_records("dali"))
    ckpt = str(_checkpoint(tmp_path / "run"))
    cases = [(["--degrade-at", "middle"], "unknown --degrade-at 'middle'"),
             (["--degrade", "none,blur:-1"], "blur:-1"),
             (["--degrade", "sharpen:2"], "sharpen:2")]
    for extra, message in cases:
        assert main(["eval", ckpt, "--data", records, "--out", str(tmp_path / "e"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("genimage-fast eval: error:") and message in err, err
    bogus = _checkpoint(tmp_path / "bogus")
    state = torch.load(bogus, weights_only=True)
    state["config"]["data"]["eval_transform"] = "timm_vitt"  # e.g. a typo that reached a checkpoint
    torch.save(state, bogus)
    assert main(["eval", str(bogus), "--data", records, "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timm_vitt" in err and "timm_vit" in err.replace("timm_vitt", ""), err
    assert not (tmp_path / "e" / "results.json").exists()


def test_protocol_names_what_the_records_changed() -> None:
    from types import SimpleNamespace

    from genimage_fast.engine.evaluate import eval_protocol

    loaded = _probe("resize_centre")
    records = SimpleNamespace(manifest={"store": "original", "max_side": None,
                                        "protocol": {"name": "grommelt", "class_balanced": True, "counts": {}}})
    loaders = {"none": SimpleNamespace(decoder="dct-scaled", name="cpu"),
               "blur:3": SimpleNamespace(decoder="full", name="cpu")}
    protocol = eval_protocol(loaded, loaders, records, "source")
    assert protocol["records_protocol"] == "grommelt-balanced"
    assert protocol["decoder"] == "mixed" and protocol["decoder_by_spec"] == {"none": "dct-scaled", "blur:3": "full"}
    assert protocol["eval_transform"] == "resize_centre" and protocol["selection"] == "last"


def test_eval_on_the_device_path_scores_the_same_images(make_records, monkeypatch) -> None:
    """`eval` through the CUDA source-space path (loaders/device_eval.py), forced on the CPU with
    torchvision's CPU decode standing in for nvJPEG: the same function of the independent pipeline's
    images, within the device resamplers' bound, and the protocol says where the pipeline ran."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from genimage_fast.loaders import device_eval, gpu_decode

    monkeypatch.setattr(device_eval, "applies", lambda loader: loader.pipeline is not None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_missing", lambda device="cuda": None)
    monkeypatch.setattr(gpu_decode, "nvjpeg_decoder",
                        lambda device: lambda datas: list(decode_jpeg(datas, mode=ImageReadMode.RGB)))
    records = open_records(make_records("dali"))
    scores, protocol = score_records(_probe(), records, SPECS, degrade_at="source", batch_size=16, backend="cpu")
    split = records.split("val")
    references = {}
    for spec in SPECS:
        reference = np.array([mean_abs_laplacian(reference_image(*split.read_encoded(int(i)), spec))
                              for i in scores.indices])
        gap = np.abs(_laplacian_from_scores(scores.scores[spec]) - reference)
        assert gap.max() < DEVICE_TOLERANCE and gap.mean() < TOLERANCE, (spec, gap.max(), gap.mean())
        references[spec] = reference
    for a in SPECS:  # each spec's scores match its own images only
        for b in SPECS:
            if a != b:
                gap = np.abs(_laplacian_from_scores(scores.scores[a]) - references[b]).mean()
                assert gap > 10 * TOLERANCE, (a, b, gap)
    assert scores.scores["blur:3"].mean() < scores.scores["none"].mean()
    assert protocol["pipeline_on"] == "device" and protocol["decoder"] == "nvjpeg"
