"""`genimage-fast features`: UnivFD's frozen features cached per split, resumable, and the probe from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from genimage_fast.cli import main
from genimage_fast.engine.features import compute_features, load_source, open_cache
from genimage_fast.loaders import build_loader
from genimage_fast.records import convert, open_records
from genimage_fast.sources import make_demo_data
from tests.test_models_univfd import SMALL, save_openai_layout, small_reference


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("feat")
    demo = make_demo_data(root / "demo", classes=1, per_class=2)
    records = root / "records"
    convert(demo, records, fmt="dali", generators="sdv14,biggan", progress=False)
    save_openai_layout(small_reference(), root / "clip.pt")
    recipe = {"model": {"name": "univfd", "kwargs": {**SMALL, "clip_weights": str(root / "clip.pt")}},
              "data": {"image_size": 224, "num_workers": 0},
              "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0},
              "loss": {"name": "bce"}, "train": {"epochs": 3, "batch_size": 8, "seed": 0}}
    (root / "univfd.yaml").write_text(yaml.safe_dump(recipe))
    return root, records


def test_cached_features_equal_a_direct_forward_pass(setup):
    root, records = setup
    cache_dir = compute_features(root / "univfd.yaml", records, root / "cache", batch_size=4, device="cpu",
                                 backend="cpu")
    cache = open_cache(cache_dir)
    source = load_source(root / "univfd.yaml")
    for split in ("train", "val"):
        feats, labels, gens = cache.split(split)
        rs = open_records(records)
        assert len(feats) == len(rs.split(split)) == cache.meta["splits"][split]
        np.testing.assert_array_equal(labels, rs.split(split).meta["label"])
        loader = build_loader(rs, backend="cpu", batch_size=4, train=False, split=split, num_workers=0,
                              eval_transform=None)
        with torch.no_grad():
            direct = torch.cat([source.model.features(b.images.float() / 255.0) for b in loader]).numpy()
        np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    assert cache.meta["identity"]["weights_sha256"] == source.model.backbone_sha256


def test_an_interrupted_cache_resumes(setup):
    root, records = setup
    full = np.array(open_cache(compute_features(root / "univfd.yaml", records, root / "c2", splits=("train",),
                                                batch_size=4, device="cpu", backend="cpu")).split("train")[0])
    # A kill after the first batch: rows past it never written, progress says 4.
    progress = root / "c2" / "train.progress.json"
    state = json.loads(progress.read_text())
    feats = np.load(root / "c2" / "train.npy", mmap_mode="r+")
    feats[4:] = 0.0
    feats.flush()
    del feats
    progress.write_text(json.dumps({**state, "done": 4}))
    (root / "c2" / "meta.json").unlink()
    resumed = open_cache(compute_features(root / "univfd.yaml", records, root / "c2", splits=("train",),
                                          batch_size=4, device="cpu", backend="cpu")).split("train")[0]
    np.testing.assert_array_equal(resumed, full)


def test_probe_from_cache_then_eval_recomputes_degraded_features(setup, capsys):
    root, records = setup
    run = root / "run"
    assert main(["features", str(root / "univfd.yaml"), "--data", str(records), "--out", str(root / "c3"),
                 "--device", "cpu", "--batch-size", "4", "--probe", str(run)]) == 0
    assert "probe trained" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["backend"] == "feature-cache" and summary["epochs"] == 3
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert sorted(state["model"]) == ["fc.bias", "fc.weight"]  # the backbone is the CLIP file, not copied
    assert main(["eval", str(run), "--data", str(records), "--degrade", "none,blur:3", "--device", "cpu",
                 "--backend", "cpu", "--out", str(root / "ev")]) == 0
    results = json.loads((root / "ev" / "results.json").read_text())
    assert set(results["accuracy"]) == {"none", "blur:3"}


def test_a_model_without_features_is_one_line(setup, capsys):
    root, records = setup
    assert main(["features", "recipes/demo.yaml", "--data", str(records), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no frozen features" in err[0]
