"""`make demo` (scripts/demo.sh): every command it runs parses; the full run is a heavy test."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from genimage_fast.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "demo.sh"


def _commands(text: str) -> list[list[str]]:
    """The genimage-fast invocations in the script, variables filled in, continuation lines joined."""
    values = dict(re.findall(r'^([A-Z0-9]+)=(\S+)$', text, flags=re.M))
    joined = text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith('"$GF"'):
            line = re.sub(r"\$\{?([A-Z0-9]+)\}?", lambda m: values.get(m.group(1), m.group(0)), line)
            line = re.sub(r"\s\d*>&?\s*\S+", " ", line.split("|")[0])  # drop pipes and redirections
            words = shlex.split(line)
            commands.append(words[1:])
    return commands


def test_demo_script_is_strict_bash_and_its_commands_parse() -> None:
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    commands = _commands(text)
    assert [c[0] for c in commands] == ["demo-data", "convert", "train", "eval", "eval", "report"]
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # a renamed flag would exit 2 here
    evaluate, contrast = parser.parse_args(commands[3]), parser.parse_args(commands[4])
    assert evaluate.degrade.split(",") == ["none", "lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5"]
    assert evaluate.out == "runs/demo" and commands[2][1] == "recipes/demo.yaml"
    # the paper's Task 2 (degrade the test images) feeds the report; the crop path only for contrast
    assert (evaluate.degrade_at, contrast.degrade_at, contrast.degrade) == ("source", "crop", evaluate.degrade)
    assert contrast.out == "runs/demo/eval-crop" and commands[5][1] == "runs/demo/results.json"
    assert (ROOT / commands[2][1]).is_file()


@pytest.mark.heavy
def test_make_demo_end_to_end() -> None:
    """The real thing (several minutes on 2 cores): leaves runs/demo with >= 90% mean val accuracy."""
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    run = ROOT / "runs" / "demo"
    summary = json.loads((run / "summary.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert summary["val_accuracy"]["mean"] >= 0.9
    assert set(results["accuracy"]) == {"none", "lr:112", "lr:64", "jpeg:65", "jpeg:30", "blur:3", "blur:5"}
    assert results["accuracy"]["none"]["mean"] == pytest.approx(summary["val_accuracy"]["mean"])
    assert "| Degradation | Midjourney | SD V1.4 |" in done.stdout
    assert (run / "results.md").is_file() and (run / "report" / "report.md").is_file()
    assert results["protocol"]["degrade_at"] == "source" and results["protocol"]["decoder"] == "full"
    crop = json.loads((run / "eval-crop" / "results.json").read_text())
    assert crop["protocol"]["degrade_at"] == "crop" and crop["accuracy"]["none"] == results["accuracy"]["none"]
    assert "degrading the test image (source) vs its crop" in done.stdout
