"""`unpack`: real split archives made with Info-ZIP's `zip -s` from demo-data, extracted by 7-Zip.

Pieces are what the release ships (GenImage-Dataset/GenImage:data/checksums.csv lists NAME.z01 ...
NAME.zip per subset, md5 first, quoted, header `md5Checksum,originalFilename`;
data/check_md5_from_csv.sh:20-27 accepts Google Drive's `-XXX` suffix before the extension).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from genimage_fast.cli import main
from genimage_fast.errors import GenImageError
from genimage_fast.sources import make_demo_data
from genimage_fast.sources.unpack import QUARANTINE, REJECTS, read_checksums, unpack

pytestmark = pytest.mark.skipif(shutil.which("7z") is None or shutil.which("zip") is None,
                                reason="7z and zip come with `make setup` (p7zip-full, zip)")
SUBSETS = ("imagenet_ai_0508_adm", "imagenet_ai_0419_biggan")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Two subsets of demo-data laid out as the zips hold them: NAME/{train,val}/{ai,nature}/..."""
    demo = make_demo_data(tmp_path_factory.mktemp("demo") / "genimage", classes=1, per_class=3)
    src = tmp_path_factory.mktemp("src")
    for name in SUBSETS:
        shutil.copytree(next(demo.rglob(name)), src / name)
    return src


def split_zip(src: Path, name: str, out: Path, piece: str = "64k", extra: dict[str, bytes] | None = None,
              suffix: str = "") -> list[Path]:
    """`zip -s` pieces of one subset; `extra` members (e.g. a hostile name) go in through zipfile first."""
    out.mkdir(parents=True, exist_ok=True)
    whole = out / f"{name}.single.zip"
    subprocess.run(["zip", "-q", "-r", "-0", str(whole.resolve()), name], cwd=src, check=True)
    if extra:
        with zipfile.ZipFile(whole, "a") as z:
            for member, data in extra.items():
                z.writestr(member, data)
    subprocess.run(["zip", "-q", "-s", piece, str(whole), "--out", str(out / f"{name}.zip")], check=True)
    whole.unlink()
    pieces = sorted(out.glob(f"{name}.z*"))
    if suffix:  # Google Drive's download names: NAME-XXX.z01
        renamed = []
        for p in pieces:
            target = p.with_name(f"{name}{suffix}{p.suffix}")
            p.rename(target)
            renamed.append(target)
        pieces = renamed
    assert len(pieces) >= 3, "the test needs a real multi-piece archive"
    return pieces


def write_checksums(path: Path, pieces: list[Path], name_of=lambda p: p.name) -> None:
    rows = ["md5Checksum,originalFilename"]
    rows += [f'"{hashlib.md5(p.read_bytes()).hexdigest()}","{name_of(p)}"' for p in pieces]
    path.write_text("\n".join(rows) + "\n")


def test_round_trip_is_byte_identical_and_rerun_keeps(source, tmp_path, capsys):
    archives = tmp_path / "archives"
    pieces = [p for name in SUBSETS for p in split_zip(source, name, archives)]
    write_checksums(tmp_path / "checksums.csv", pieces)
    out = tmp_path / "out"
    assert main(["unpack", str(archives), str(out), "--checksums", str(tmp_path / "checksums.csv")]) == 0
    got = {k: v for k, v in tree_bytes(out).items() if not k.startswith(".unpack/") and k != REJECTS}
    assert got == tree_bytes(source)
    assert (out / REJECTS).read_text() == ""
    capsys.readouterr()
    assert main(["unpack", str(archives), str(out)]) == 0
    assert capsys.readouterr().out.count("kept (already unpacked)") == len(SUBSETS)


def test_google_drive_suffixes_and_generator_filter(source, tmp_path):
    archives = tmp_path / "archives"
    pieces = split_zip(source, SUBSETS[0], archives, suffix="-003")
    split_zip(source, SUBSETS[1], archives)
    canonical = {p: p.name.replace("-003", "") for p in pieces}
    write_checksums(tmp_path / "sums.csv", pieces, name_of=canonical.get)
    results = unpack(archives, tmp_path / "out", checksums=tmp_path / "sums.csv", generators="adm", progress=False)
    assert [r.name for r in results] == [SUBSETS[0]]
    assert tree_bytes(tmp_path / "out" / SUBSETS[0]) == tree_bytes(source / SUBSETS[0])
    assert not (tmp_path / "out" / SUBSETS[1]).exists()


def test_bad_piece_is_named_before_anything_is_extracted(source, tmp_path, capsys):
    archives = tmp_path / "archives"
    pieces = split_zip(source, SUBSETS[0], archives)
    write_checksums(tmp_path / "sums.csv", pieces)
    data = bytearray(pieces[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    pieces[1].write_bytes(bytes(data))
    out = tmp_path / "out"
    assert main(["unpack", str(archives), str(out), "--checksums", str(tmp_path / "sums.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{pieces[1].name}: md5 differs" in err[0]
    assert not out.exists()


def test_missing_piece_found_from_the_zip_itself(source, tmp_path, capsys):
    archives = tmp_path / "archives"
    pieces = split_zip(source, SUBSETS[0], archives)
    pieces[0].unlink()  # NAME.z01; no checksum list: the .zip's disk count says it must exist
    assert main(["unpack", str(archives), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{SUBSETS[0]}.z01: missing piece" in err[0]


def test_zero_byte_corrupt_and_hostile_members(source, tmp_path):
    name = SUBSETS[0]
    empty = f"{name}/train/ai/115_adm_999.PNG"
    corrupt = f"{name}/train/ai/115_adm_998.PNG"
    png = next((source / name / "train" / "ai").glob("*.PNG")).read_bytes()
    extra = {empty: b"", corrupt: png[: len(png) // 2], "../x": b"outside", "/abs.txt": b"absolute"}
    archives = tmp_path / "archives"
    split_zip(source, name, archives, extra=extra)
    out = tmp_path / "work" / "out"
    unpack(archives, out, progress=False)
    rejects = {r["path"]: r["reason"] for r in map(json.loads, (out / REJECTS).read_text().splitlines())}
    assert rejects[empty] == "zero-byte file"
    assert rejects[corrupt].startswith("unreadable image:")
    assert "(..)" in rejects["../x"] and "absolute" in rejects["/abs.txt"]
    assert (out / QUARANTINE / empty).read_bytes() == b""
    assert (out / QUARANTINE / corrupt).is_file() and not (out / corrupt).exists()
    # The hostile members are written nowhere: not beside OUT, not inside it under a rewritten name.
    assert not (tmp_path / "work" / "x").exists()
    written = {p.name for p in out.rglob("*") if p.is_file()}
    assert "x" not in written and "abs.txt" not in written
    assert tree_bytes(out / name) == tree_bytes(source / name)


def test_checksum_list_layouts(tmp_path):
    (tmp_path / "a.csv").write_text('md5Checksum,originalFilename\n"0123456789abcdef0123456789abcdef","x.z01"\n'
                                    '"0123456789abcdef0123456789abcdef","x.z01"\n')
    (tmp_path / "b.csv").write_text("x.zip,FEDCBA9876543210FEDCBA9876543210\n")
    assert read_checksums(tmp_path / "a.csv") == {"x.z01": "0123456789abcdef0123456789abcdef"}
    assert read_checksums(tmp_path / "b.csv") == {"x.zip": "fedcba9876543210fedcba9876543210"}
    (tmp_path / "c.csv").write_text("x.zip,notahash\n")
    with pytest.raises(GenImageError, match="expected 'md5,name'"):
        read_checksums(tmp_path / "c.csv")


_SLOW_UNPACK = """
import sys, time
import genimage_fast.sources.unpack as u
real = u.image_problem
def slow(path):
    time.sleep(0.05)
    return real(path)
u.image_problem = slow
u.unpack(sys.argv[1], sys.argv[2], progress=False)
"""


@pytest.mark.parametrize("delay", [0.8, 1.6])
def test_rerun_after_sigkill_resumes(source, tmp_path, delay):
    archives = tmp_path / "archives"
    for name in SUBSETS:
        split_zip(source, name, archives)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_UNPACK, str(archives), str(out)])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    unpack(archives, out, progress=False)
    got = {k: v for k, v in tree_bytes(out).items() if not k.startswith(".unpack/") and k != REJECTS}
    assert got == tree_bytes(source)
    assert not any(p.name.endswith(".partial") for p in (out / ".unpack").iterdir())
    assert os.path.getsize(out / REJECTS) == 0
