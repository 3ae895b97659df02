"""The convert / inspect / verify / bench convert commands through the CLI."""

from __future__ import annotations

import json

from test_convert import make_tree

from genimage_fast.cli import main
from tests.conftest import hide_modules


def test_convert_inspect_verify_commands(tmp_path, capsys):
    src, out = tmp_path / "tree", tmp_path / "rec"
    bad = make_tree(src)
    assert main(["convert", str(src), str(out), "--format", "dali", "--store", "jpeg:70", "--max-side", "32"]) == 0
    captured = capsys.readouterr()
    assert "img/s" in captured.err and "rejects: 3" in captured.out  # the progress bar shows rate + ETA
    assert main(["inspect", str(out), "--json", "--limit", "4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["manifest"]["store"] == "jpeg:70" and doc["manifest"]["max_side"] == 32
    assert doc["manifest"]["rejects"] == len(bad) and len(doc["records"]) == 4
    assert main(["inspect", str(out)]) == 0
    assert "format dali" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    shard = out / doc["manifest"]["splits"]["val"]["files"][0]["name"]
    data = bytearray(shard.read_bytes())
    data[-2000] ^= 0x80
    shard.write_bytes(bytes(data))
    assert main(["verify", str(out)]) == 2
    assert shard.name in capsys.readouterr().err


def test_convert_errors_are_one_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "o"), "--format", "dali"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
    assert main(["verify", str(tmp_path)]) == 2


def test_convert_to_ffcv_without_ffcv_is_one_line(tmp_path, capsys, monkeypatch):
    """The GPU box has no ffcv: `convert --format ffcv` says so in one line, exit 2, before any work
    (simulated here by making every ffcv module fail to import, as the stubs of `make test-minimal` do)."""
    src = tmp_path / "tree"
    make_tree(src, bad=False)
    hide_modules(monkeypatch, "ffcv")
    assert main(["convert", str(src), str(tmp_path / "o"), "--format", "ffcv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error: ffcv records (--format ffcv) need the ffcv package" in err
    assert "which does not import here (ModuleNotFoundError" in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_bench_convert(tmp_path, capsys):
    src = tmp_path / "tree"
    make_tree(src, bad=False)
    out = tmp_path / "bench.json"
    assert main(["bench", "convert", str(src), "--workers", "2", "--limit", "12", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["results"]]
    assert names[0] == "convert/plain-pil-loop" and doc["results"][0]["baseline"]
    assert all(r["images"] == 12 for r in doc["results"])
    assert "vs baseline" in capsys.readouterr().out
