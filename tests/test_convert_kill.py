"""Kill test (issue #15): SIGKILL a convert at random moments (several seeds), rerun it: the final
manifest (all but its `created` time) and every byte of the shards, indexes and rejects.jsonl equal
an uninterrupted run's, and no temp file is left. Markers are checked by size and hash on resume,
so a shard cut short (as a power loss leaves it) is redone, never published."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genimage_fast.records import convert, verify
from tests.test_convert_fuzz import _make_tree

SHARD = 4  # samples per chunk: many chunks, so kills land between and inside them
SLOW = 0.02  # seconds added per image in the killed process, so a kill can land anywhere


def _final_files(out: Path) -> dict[str, bytes]:
    manifest = json.loads((out / "manifest.json").read_text())
    names = [e["name"] for s in manifest["splits"].values() for e in s["files"] + s.get("sidecars", [])]
    return {name: (out / name).read_bytes() for name in [*names, "rejects.jsonl"]}


def _manifest(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("created")
    return manifest


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kill")
    tree = root / "tree"
    _make_tree(tree, seed=7, n=40)  # records and rejects both
    convert(tree, root / "ref", fmt="dali", progress=False, shard_size=SHARD)
    return tree, root / "ref"


def _killed_then_rerun(tree: Path, out: Path, seed: int, fmt: str = "dali") -> float:
    script = (
        "import time, genimage_fast.records.worker as w\n"
        "orig = w.convert_item\n"
        f"def slow(*a, **k):\n    time.sleep({SLOW})\n    return orig(*a, **k)\n"
        "w.convert_item = slow\n"
        "from genimage_fast.records import convert\n"
        f"convert({str(tree)!r}, {str(out)!r}, fmt={fmt!r}, progress=False, shard_size={SHARD})\n"
    )
    # The kill lands at a random moment of the work (~0.8 s: 40 images x SLOW + writes), counted
    # from when convert has made its state folder (Python start-up and imports vary too much).
    delay = float(np.random.default_rng(seed).uniform(0.0, 0.7))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 60
    while not (out / ".state").is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed, "the convert finished before the kill: raise SLOW"
    assert not (out / "manifest.json").exists()
    convert(tree, out, fmt=fmt, progress=False, shard_size=SHARD)
    return delay


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_at_a_random_moment_then_rerun_gives_identical_records(reference, tmp_path: Path, seed: int) -> None:
    tree, ref = reference
    out = tmp_path / "out"
    _killed_then_rerun(tree, out, seed)
    assert _manifest(out) == _manifest(ref)
    assert _final_files(out) == _final_files(ref)
    assert not list(out.rglob("*.tmp"))
    verify(out)


@pytest.mark.heavy
@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
@pytest.mark.parametrize("seed", range(10, 20))
def test_sigkill_many_seeds(reference, tmp_path: Path, seed: int, fmt: str) -> None:
    tree, ref = reference
    if fmt == "ffcv":
        pytest.importorskip("ffcv")
        ref = tmp_path / "ref"
        convert(tree, ref, fmt=fmt, progress=False, shard_size=SHARD)
    out = tmp_path / "out"
    _killed_then_rerun(tree, out, seed, fmt)
    assert _manifest(out) == _manifest(ref)
    assert _final_files(out) == _final_files(ref)


def test_a_truncated_or_changed_shard_is_redone_not_published(reference, tmp_path: Path) -> None:
    """What a power loss can leave under a marker: the shard shorter than written, or other bytes
    of the same size. The marker's size and sha256 catch both; the chunk is converted again."""
    tree, ref = reference
    out = tmp_path / "out"
    convert(tree, out, fmt="dali", progress=False, shard_size=SHARD)
    (out / "manifest.json").unlink()  # as if the kill came before the manifest
    first, second = sorted(out.glob("train-*.tar"))[:2]
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    data = bytearray(second.read_bytes())
    data[700] ^= 0xFF
    second.write_bytes(bytes(data))
    convert(tree, out, fmt="dali", progress=False, shard_size=SHARD)
    assert _final_files(out) == _final_files(ref)
    verify(out)


def test_a_finished_convert_with_a_damaged_file_is_repaired_on_rerun(reference, tmp_path: Path) -> None:
    tree, ref = reference
    out = tmp_path / "out"
    convert(tree, out, fmt="dali", progress=False, shard_size=SHARD)
    shard = sorted(out.glob("train-*.tar"))[0]
    shard.write_bytes(shard.read_bytes()[:1024])
    convert(tree, out, fmt="dali", progress=False, shard_size=SHARD)
    assert _final_files(out) == _final_files(ref)


def test_a_worker_killed_mid_chunk_is_one_error_line_and_the_rerun_resumes(reference, tmp_path: Path,
                                                                          monkeypatch) -> None:
    """The OOM killer (or a crash in a native decoder) takes a pool worker: one clear error, no
    traceback, and the same command then finishes with the uninterrupted run's bytes."""
    import genimage_fast.records.worker as worker
    from genimage_fast.errors import GenImageError

    tree, ref = reference
    out = tmp_path / "out"
    real = worker.convert_item

    def dies(item, *args, **kwargs):
        if item.key == 21:  # in a later chunk, so earlier chunks are finished and kept
            os.kill(os.getpid(), signal.SIGKILL)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(worker, "convert_item", dies)
    with pytest.raises(GenImageError, match="worker process died") as err:
        convert(tree, out, fmt="dali", progress=False, shard_size=SHARD, workers=2)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(worker, "convert_item", real)
    convert(tree, out, fmt="dali", progress=False, shard_size=SHARD, workers=2)
    assert _final_files(out) == _final_files(ref)
