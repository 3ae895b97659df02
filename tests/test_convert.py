"""convert on hand-made trees: round trips per format and store mode, rejects, resume, verify, --shard."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimage_fast.errors import GenImageError
from genimage_fast.records import convert, estimate_jpeg_quality, open_records, verify
from genimage_fast.sources import scan_tree
from tests.conftest import requires_backend

ADM = "ADM/imagenet_ai_0508_adm"
BIGGAN = "BigGAN/imagenet_ai_0419_biggan"


def _photo(seed: int, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 + seed, y * 5, (x + y) * 2], axis=-1) % 256
    noise = rng.integers(0, 40, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def make_tree(root: Path, bad: bool = True) -> dict[str, str]:
    """Two generators, both splits; reals of varied size/quality/mode; optionally bad files.

    Returns {relpath: expected reject reason fragment} for the bad ones.
    """
    seed = 0
    for subset, token, size in ((ADM, "adm", 64), (BIGGAN, "biggan", 32)):
        for split, n in (("train", 4), ("val", 2)):
            for i in range(n):
                seed += 1
                cls = 3 + i
                name = f"{cls}_adm_{i}.PNG" if token == "adm" else f"{cls:03d}_biggan_{i:05d}.png"
                _save(root / subset / split / "ai" / name, _encode(_photo(seed, size, size), "PNG"))
                quality = (75, 96, 90, 60)[i % 4]
                w, h = 40 + 8 * i, 30 + 4 * i
                real = (f"n01440764_{seed}.JPEG" if split == "train" else f"ILSVRC2012_val_{seed:08d}.JPEG")
                _save(root / subset / split / "nature" / real, _encode(_photo(seed + 100, w, h), "JPEG",
                                                                       quality=quality))
    nature = root / ADM / "train" / "nature"
    _save(nature / "n01443537_1.JPEG", _encode(_photo(7, 36, 28).convert("CMYK"), "JPEG", quality=96))
    _save(nature / "n01443537_2.JPEG", _encode(_photo(8, 30, 26).convert("L"), "JPEG", quality=85))
    _save(nature / "n01443537_3.JPEG", _encode(_photo(9, 34, 22), "PNG"))  # a PNG named .JPEG
    bad_files = {}
    if bad:
        fakes = root / BIGGAN / "train" / "ai"
        _save(fakes / "116_biggan_00090.png", b"")
        bad_files[f"{BIGGAN}/train/ai/116_biggan_00090.png"] = "empty"
        full = _encode(_photo(1, 32, 32), "PNG")
        _save(fakes / "116_biggan_00091.png", full[: len(full) // 2])
        bad_files[f"{BIGGAN}/train/ai/116_biggan_00091.png"] = "truncated"
        _save(root / ADM / "val" / "ai" / "115_adm_9.PNG", b"GIF89a-not-really" + bytes(64))
        bad_files[f"{ADM}/val/ai/115_adm_9.PNG"] = "header"
    return bad_files


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("hand") / "genimage"
    return root, make_tree(root)


def _source_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _expected(store: str, fmt: str, path: Path, label: int, quality: int | None) -> np.ndarray:
    """What a store mode must give back, computed with PIL / OpenCV independently of the package."""
    pixels = _source_pixels(path)
    if store == "original" or store == "raw" or (store == "match-real" and label == 0):
        return pixels
    q = quality
    if store == "jpeg:80" and fmt == "ffcv":  # FFCV's RGBImageField encodes with OpenCV
        import cv2

        ok, enc = cv2.imencode(".jpg", pixels[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), q])
        return cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    data = _encode(Image.fromarray(pixels), "JPEG", quality=q)
    return _source_pixels(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
@pytest.mark.parametrize("store", ["original", "raw", "jpeg:80", "match-real"])
def test_round_trip(tree, tmp_path, fmt, store):
    root, bad = tree
    out = tmp_path / "rec"
    manifest = convert(root, out, fmt=fmt, store=store, progress=False, shard_size=3)
    scan = {s.relpath: s for s in scan_tree(root).samples}
    good = {rel: s for rel, s in scan.items() if rel not in bad}
    rs = open_records(out)
    assert rs.format == fmt and rs.store == store and set(rs.splits) == {"train", "val"}
    assert manifest["rejects"] == len(bad)
    seen = set()
    real_q = {split: {estimate_jpeg_quality(s.path.read_bytes()) for s in good.values()
                      if s.split == split and s.label == 0} - {-1} for split in ("train", "val")}
    for split in rs.splits:
        part = rs.split(split)
        meta = part.meta
        assert len(part) == manifest["splits"][split]["count"] == len(meta["path"])
        assert list(meta["key"]) == sorted(meta["key"])  # keys ascend in record order
        for i, rel in enumerate(meta["path"]):
            s = good[rel]
            seen.add(rel)
            data = s.path.read_bytes()
            with Image.open(s.path) as im:
                assert (meta["width"][i], meta["height"][i]) == im.size
            fmt_code = 0 if data[:2] == b"\xff\xd8" else 1
            assert (meta["label"][i], meta["generator"][i], meta["class_id"][i], meta["source_format"][i]) == (
                s.label, s.generator, s.class_id, fmt_code)
            assert meta["jpeg_quality"][i] == estimate_jpeg_quality(data)
            kind, payload = part.read_encoded(i)
            quality = 80 if store == "jpeg:80" else None
            if store == "match-real" and s.label == 1:
                quality = estimate_jpeg_quality(payload)
                assert kind == "jpeg" and quality in real_q[split]
            if store == "original" or (store == "match-real" and s.label == 0):
                assert payload == data  # bytes verbatim
            if store == "raw":
                assert kind == "raw"
            if store == "jpeg:80":
                assert kind == "jpeg" and estimate_jpeg_quality(payload) == 80 == meta["stored_quality"][i]
            np.testing.assert_array_equal(part.read_image(i), _expected(store, fmt, s.path, s.label, quality))
    assert seen == set(good)
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {r["path"] for r in rejects} == set(bad)
    for r in rejects:
        assert bad[r["path"]] in r["reason"]
    assert verify(out) > 0


def test_max_side_resizes_antialiased(tree, tmp_path):
    root, bad = tree
    out = tmp_path / "rec"
    convert(root, out, fmt="dali", store="raw", max_side=24, progress=False)
    part = open_records(out).split("train")
    scan = {s.relpath: s for s in scan_tree(root).samples}
    for i, rel in enumerate(part.meta["path"]):
        image = part.read_image(i)
        with Image.open(scan[rel].path) as im:
            src = im.convert("RGB")
        assert max(image.shape[:2]) == min(24, max(src.size))
        if max(src.size) > 24:
            scale = 24 / max(src.size)
            size = (max(1, round(src.width * scale)), max(1, round(src.height * scale)))
            np.testing.assert_array_equal(image, np.asarray(src.resize(size, Image.Resampling.BILINEAR)))
        assert (part.meta["width"][i], part.meta["height"][i]) == src.size  # source size kept in meta


def test_strict_fails_on_bad_input(tree, tmp_path):
    root, _ = tree
    with pytest.raises(GenImageError, match="strict"):
        convert(root, tmp_path / "rec", fmt="dali", strict=True, progress=False)


def test_generators_and_split_filters(tree, tmp_path):
    root, _ = tree
    manifest = convert(root, tmp_path / "rec", fmt="dali", split="val", generators=["adm"], progress=False)
    assert list(manifest["splits"]) == ["val"]
    assert set(manifest["counts"]) == {"adm"}
    by_id = convert(root, tmp_path / "rec2", fmt="dali", split="val", generators=[3], progress=False)
    assert by_id["splits"]["val"]["count"] == manifest["splits"]["val"]["count"]
    with pytest.raises(GenImageError, match="unknown generator"):
        convert(root, tmp_path / "rec3", fmt="dali", generators="nope", progress=False)


def _digests(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {e["name"]: e["sha256"] for s in manifest["splits"].values() for e in s["files"] + s["sidecars"]}


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
def test_resume_after_kill(tree, tmp_path, fmt):
    """Kill a slow convert after its first chunk, rerun: finished chunks are kept, the result is identical."""
    root, _ = tree
    out, ref = tmp_path / "killed", tmp_path / "ref"
    script = (
        "import time, genimage_fast.records.worker as w\n"
        "orig = w.convert_item\n"
        "def slow(*a, **k):\n    time.sleep(0.3)\n    return orig(*a, **k)\n"
        "w.convert_item = slow\n"
        "from genimage_fast.records import convert\n"
        f"convert({str(root)!r}, {str(out)!r}, fmt={fmt!r}, progress=False, shard_size=3)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    state = out / ".state"
    deadline = time.time() + 60
    while time.time() < deadline and not list(state.glob("*.done.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in state.glob("*.done.json")}
    assert done and not (out / "manifest.json").exists()
    (out / "val-00001.tar.tmp").write_bytes(b"half a shard")  # as a kill inside a write leaves it
    convert(root, out, fmt=fmt, progress=False, shard_size=3)
    for name, mtime in done.items():  # the finished chunks were not redone
        assert (state / name).stat().st_mtime_ns == mtime
    convert(root, ref, fmt=fmt, progress=False, shard_size=3)
    assert _digests(out) == _digests(ref)
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("fmt", ["dali", "ffcv"])
def test_shard_slices_cover_everything_once(tree, tmp_path, fmt):
    root, _ = tree
    n = 3
    stems: list[str] = []
    inputs = 0
    merged = tmp_path / "merged"
    elsewhere = tmp_path / "mounted-elsewhere" / "genimage"  # another machine's mount point
    shutil.copytree(root, elsewhere)
    for i in range(n):
        part = tmp_path / f"slice{i}"
        manifest = convert(elsewhere if i == 1 else root, part, fmt=fmt, shard=(i, n), progress=False, shard_size=2)
        assert manifest["complete"] is False and manifest["shard"] == [i, n]
        assert (part / f"manifest.shard-{i}-of-{n}.json").is_file()
        markers = [json.loads(m.read_text()) for m in (part / ".state").glob("*.done.json")]
        assert markers  # every slice gets work
        stems.extend(f"{m['split']}-{m['chunk']}" for m in markers)
        inputs += sum(m["inputs"] for m in markers)
        shutil.copytree(part, merged, dirs_exist_ok=True)
    direct = tmp_path / "direct"
    full = convert(root, direct, fmt=fmt, progress=False, shard_size=2)
    # merging = rerunning the same convert over the union of the slices: nothing is reconverted
    before = {p.name: p.stat().st_mtime_ns for p in (merged / ".state").glob("*.done.json")}
    result = convert(root, merged, fmt=fmt, progress=False, shard_size=2)
    after = {p.name: p.stat().st_mtime_ns for p in (merged / ".state").glob("*.done.json")}
    assert before == after
    assert _digests(merged) == _digests(direct)
    assert result["splits"] == full["splits"] and result["rejects"] == full["rejects"]
    # the slices' chunks are disjoint and their inputs add up to every scanned input exactly once
    assert len(stems) == len(set(stems))
    assert inputs == len(scan_tree(root).samples)


def test_verify_catches_a_flipped_byte(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "rec"
    manifest = convert(root, out, fmt="dali", progress=False, shard_size=4)
    assert verify(out) == 2 * sum(len(s["files"]) for s in manifest["splits"].values())
    victim = out / manifest["splits"]["train"]["files"][1]["name"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(GenImageError, match=victim.name):
        verify(out)


@requires_backend("ffcv")  # writes .beton records
def test_rerun_of_finished_convert_is_a_no_op(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "rec"
    first = convert(root, out, fmt="ffcv", progress=False)
    second = convert(root, out, fmt="ffcv", progress=False)
    assert first == second


def test_bad_arguments(tree, tmp_path):
    root, _ = tree
    for kwargs, match in (({"store": "jpeg:101"}, "1..100"), ({"store": "orignal"}, "did you mean"),
                          ({"fmt": "tfrecord"}, "record format"), ({"shard": (3, 2)}, "shard")):
        with pytest.raises(GenImageError, match=match):
            convert(root, tmp_path / "x", **{"fmt": "dali", "progress": False, **kwargs})
    with pytest.raises(GenImageError, match="does not exist"):
        convert(tmp_path / "missing", tmp_path / "y", fmt="dali")
    with pytest.raises(GenImageError, match="manifest"):
        open_records(tmp_path)


def test_worker_pool_gives_identical_files(tree, tmp_path):
    root, _ = tree
    one = tmp_path / "one"
    two = tmp_path / "two"
    convert(root, one, fmt="dali", store="match-real", progress=False, shard_size=5)
    convert(root, two, fmt="dali", store="match-real", progress=False, shard_size=5, workers=2)
    assert _digests(one) == _digests(two)
    with pytest.raises(GenImageError, match="strict"):
        convert(root, tmp_path / "three", fmt="dali", strict=True, progress=False, shard_size=5, workers=2)


@pytest.mark.parametrize(("store", "max_side"), [("raw", None), ("raw", 256), ("original", None), ("jpeg:90", 512)])
def test_default_shard_size_keeps_shards_near_1gb(store, max_side):
    from genimage_fast.records.plan import default_shard_size
    from genimage_fast.records.store import parse_store

    n = default_shard_size(parse_store(store), max_side)
    side = max_side or 1024
    raw_bytes = side * side * 3  # the largest sample: decoded pixels (PNG payloads are at most ~half)
    worst = n * (raw_bytes if store == "raw" else raw_bytes // 2)
    assert 0.5 * 2**30 < worst <= 2**30 or n == 10_000
