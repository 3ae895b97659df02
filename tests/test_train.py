"""`genimage-fast train` end to end on tiny real records (cpu loader, demo_cnn, CPU).

Run-directory files, exact stop-and-resume, clear errors, SIGTERM checkpoint, NaN stop, a 2-process
gloo run through torchrun, and that the demo recipe learns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from genimage_fast.cli import main
from genimage_fast.config import load_config
from genimage_fast.engine.metrics import read_metrics
from genimage_fast.engine.train import train
from genimage_fast.errors import GenImageError
from genimage_fast.loaders import build_loader
from tests.conftest import requires_cuda

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "demo.yaml"
# Tiny and fast: 32 px, 8 images a step, no loader workers (deterministic and cheap on 2 cores).
TINY = ["data.image_size=32", "data.num_workers=0", "train.batch_size=8", "train.log_every=1", "train.device=cpu",
        "train.precision=fp32"]
SUMMARY_KEYS = {"recipe", "model", "epochs", "steps", "world_size", "images_per_second", "val_accuracy",
                "selection", "wall_seconds", "backend"}


@pytest.fixture(scope="module")
def records(make_records) -> Path:
    return make_records("dali")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core box OpenMP spin-waits
    make them several times slower; the engine's behaviour does not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_run_directory_files(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train(DEMO, records, out=run, overrides=[*TINY, "train.max_steps=3"])
    assert set(summary) == SUMMARY_KEYS
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["steps"] == summary["steps"] == 3 and on_disk["world_size"] == 1
    assert on_disk["recipe"] == "demo" and on_disk["model"] == "demo_cnn" and on_disk["images_per_second"] > 0
    acc = on_disk["val_accuracy"]
    assert 0.0 <= acc["mean"] <= 1.0 and {"sdv14", "biggan"} <= set(acc)
    # config.yaml is the resolved recipe (overrides applied) and loads back as a recipe.
    resolved = load_config(run / "config.yaml")
    assert resolved.data.image_size == 32 and resolved.train.max_steps == 3
    info = json.loads((run / "run.json").read_text())
    assert info["git_commit"] and info["world_size"] == 1
    lines = read_metrics(run / "metrics.jsonl")
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert all({"epoch", "lr", "images_per_second"} <= set(r) for r in steps)
    assert any(r.get("val_accuracy") == acc for r in lines)
    for name in ("last.pt", "best.pt"):
        ckpt = _load(run / "checkpoints" / name)
        assert ckpt["step"] == 3 and ckpt["config"]["model"]["name"] == "demo_cnn"
        assert {"model", "optimizer", "scheduler", "scaler", "rng", "loader", "epoch", "best_metric",
                "version"} <= set(ckpt)
    assert not list(run.rglob("*.tmp"))


def test_resume_reproduces_straight_run(records: Path, tmp_path: Path) -> None:
    # 2 epochs with a schedule and more steps than one epoch holds, so the stop/resume crosses state
    # that matters: momentum, lr schedule, RNG, loader position mid-epoch.
    # val_every=0: the straight run validates only at its end, the split run also at its stop, which
    # checks that validation leaves the training RNG streams untouched.
    # random_erase draws from the augmentation generator, so its state must survive the resume too.
    base = [*TINY, "train.epochs=3", "train.val_every=0", "optim.name=sgd", "optim.lr=0.05",
            "schedule.warmup_epochs=1", "aug.random_erase=0.5"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    per_epoch = len(build_loader(records, backend="cpu", batch_size=8, image_size=32, num_workers=0))
    half, total = per_epoch + 1, per_epoch + 3  # the stop falls inside the second epoch
    train(DEMO, records, out=straight, overrides=[*base, f"train.max_steps={total}"])
    train(DEMO, records, out=split, overrides=[*base, f"train.max_steps={half}"])
    summary = train(DEMO, records, out=split, overrides=[*base, f"train.max_steps={total}"], resume=True)
    assert summary["steps"] == total
    a, b = _losses(straight), _losses(split)
    assert sorted(a) == sorted(b) == list(range(1, total + 1))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4), step
    final_a, final_b = _load(straight / "checkpoints/last.pt"), _load(split / "checkpoints/last.pt")
    for key, value in final_a["model"].items():
        assert torch.allclose(value.float(), final_b["model"][key].float(), rtol=1e-4, atol=1e-6), key


def test_unknown_set_key_is_one_clear_error(records: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", str(DEMO), "--data", str(records), "--out", str(tmp_path / "r"),
                 "--set", "train.batchsize=4"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "train.batchsize" in err and "batch_size" in err
    assert not (tmp_path / "r").exists()


def test_bad_records_path_is_one_clear_error(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for data in (tmp_path / "missing", empty):
        code = main(["train", str(DEMO), "--data", str(data), "--out", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and str(data) in err
    with pytest.raises(GenImageError, match="--data"):
        train(DEMO, None, out=tmp_path / "r")
    with pytest.raises(GenImageError, match="nothing to resume"):
        train(DEMO, empty, out=tmp_path / "r", resume=True)


def test_dry_run_prints_config_and_parameters(capsys) -> None:
    assert main(["train", str(DEMO), "--dry-run", "--set", "data.image_size=48"]) == 0
    out = capsys.readouterr().out
    body, _, count = out.rpartition("# parameters: ")
    assert yaml.safe_load(body)["data"]["image_size"] == 48
    from genimage_fast.models import create_model

    count, _, rest = count.partition("\n")  # then "# init: ..." and the effective settings
    assert int(count.strip().replace(",", "")) == sum(p.numel() for p in create_model("demo_cnn").parameters())
    assert rest.startswith("# init: from scratch\n")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(DEMO, records, out=run, overrides=[*TINY, "train.max_steps=2", "train.epochs=5"])
    good = _load(run / "checkpoints/last.pt")
    with pytest.raises(GenImageError, match=r"loss became (nan|inf).*last good checkpoint"):
        train(DEMO, records, out=run, resume=True,
              overrides=[*TINY, "train.max_steps=12", "train.epochs=5", "optim.lr=1.0e+30"])
    kept = _load(run / "checkpoints/last.pt")
    assert kept["step"] == good["step"] == 2
    for key, value in good["model"].items():
        assert torch.equal(value, kept["model"][key])
        assert torch.isfinite(kept["model"][key].float()).all()


def _cli_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def test_sigterm_saves_a_checkpoint_then_exits(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "genimage_fast", "train", str(DEMO), "--data", str(records), "--out", str(run),
           *[arg for kv in TINY for arg in ("--set", kv)], "--set", "train.epochs=1000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env())
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None:
        assert time.monotonic() < deadline, "no metrics line within 120 s"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in err and "--resume" in err
    ckpt = _load(run / "checkpoints/last.pt")
    logged = max(r["step"] for r in read_metrics(metrics) if "loss" in r)
    assert ckpt["step"] >= 1 and ckpt["step"] >= logged
    assert ckpt["epoch"] > 0 or ckpt["loader"]["batch"] == ckpt["step"]  # resume position = steps taken
    assert not (run / "summary.json").exists()


def test_torchrun_two_processes_gloo(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "genimage_fast", "train", str(DEMO),
           "--data", str(records), "--out", str(run), *[arg for kv in TINY for arg in ("--set", kv)],
           "--set", "train.max_steps=2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_cli_env())
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert 0.0 <= summary["val_accuracy"]["mean"] <= 1.0
    # Only rank 0 wrote: one line per step, no temp files, one set of checkpoints.
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r] == [1, 2]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    ckpt = _load(run / "checkpoints/last.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng_by_rank"]) == 2
    assert done.stdout.count("trained 2 steps") == 1


def test_demo_recipe_learns_quick(records: Path, tmp_path: Path) -> None:
    """Few steps on the tiny fixture data: the loss falls and validation beats chance."""
    summary = train(DEMO, records, out=tmp_path / "run",
                    overrides=["data.num_workers=0", "train.epochs=6", "train.log_every=1"])
    losses = _losses(tmp_path / "run")
    steps = sorted(losses)
    first, last = steps[: len(steps) // 4 or 1], steps[-(len(steps) // 4 or 1):]
    assert sum(losses[s] for s in last) / len(last) < 0.8 * sum(losses[s] for s in first) / len(first)
    assert summary["val_accuracy"]["mean"] > 0.6


@pytest.mark.heavy
def test_demo_recipe_reaches_90_percent(tmp_path: Path) -> None:
    """The full demo: default demo-data (4 classes x 8), DALI shards, recipes/demo.yaml as shipped."""
    from genimage_fast.records.convert import convert
    from genimage_fast.sources.demo import make_demo_data

    tree = make_demo_data(tmp_path / "demo")
    rec = tmp_path / "rec"
    convert(tree, rec, fmt="dali", progress=False)
    summary = train(DEMO, rec, out=tmp_path / "run")
    assert summary["val_accuracy"]["mean"] >= 0.9


@requires_cuda
def test_cuda_bf16_channels_last_steps(records: Path, tmp_path: Path) -> None:
    summary = train(DEMO, records, out=tmp_path / "run",
                    overrides=["train.device=cuda", "train.precision=bf16", "train.channels_last=true",
                               "train.max_steps=4", "train.batch_size=8", "data.image_size=64"])
    assert summary["steps"] == 4 and summary["images_per_second"] > 0
    assert 0.0 <= summary["val_accuracy"]["mean"] <= 1.0
    ckpt = _load(tmp_path / "run/checkpoints/last.pt")
    assert ckpt["scaler"] == {} and all(torch.isfinite(v.float()).all() for v in ckpt["model"].values())
    # fp16 adds a GradScaler whose state is checkpointed.
    train(DEMO, records, out=tmp_path / "fp16", overrides=["train.device=cuda", "train.precision=fp16",
                                                            "train.max_steps=2", "train.batch_size=8"])
    assert "scale" in _load(tmp_path / "fp16/checkpoints/last.pt")["scaler"]


def test_resume_with_another_optimizer_is_refused(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(DEMO, records, out=run, overrides=[*TINY, "train.max_steps=1"])
    with pytest.raises(GenImageError, match="optim.name=adamw"):
        train(DEMO, records, out=run, resume=True, overrides=[*TINY, "train.max_steps=2", "optim.name=sgd"])


def test_gradient_accumulation_consumes_accum_batches_per_step(records: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train(DEMO, records, out=run, overrides=[*TINY, "train.batch_size=4", "train.grad_accum=2",
                                                       "train.max_steps=2", "train.val_every=0"])
    ckpt = _load(run / "checkpoints/last.pt")
    per_epoch = len(build_loader(records, backend="cpu", batch_size=4, image_size=32, num_workers=0)) // 2
    assert summary["steps"] == ckpt["step"] == 2 and ckpt["loader"] == {"epoch": 0, "batch": 4}
    assert summary["epochs"] == pytest.approx(2 / per_epoch, abs=1e-4)


def test_bench_train_rows_and_json(records: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "train", str(DEMO), "--data", str(records), "--steps", "2", "--warmup", "1",
                 "--device", "cpu", "--json", str(out), *[arg for kv in TINY for arg in ("--set", kv)]])
    assert code == 0
    payload = json.loads(out.read_text())
    rows = {r["name"]: r for r in payload["results"]}
    assert set(rows) == {"train/synthetic", "train/loader", "loader only"}
    assert all(r["images"] == 2 * 8 and r["seconds"] > 0 for r in rows.values())
    assert rows["train/synthetic"]["baseline"] and rows["train/loader"]["ratio_to_baseline"] > 0
    assert payload["settings"]["model"] == "demo_cnn" and payload["settings"]["image_size"] == 32
    assert "train/loader" in capsys.readouterr().out
