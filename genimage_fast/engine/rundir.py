"""The run directory's small files: resolved config, provenance (git commit, command), summary.

Layout (DESIGN §4.5): config.yaml, run.json, metrics.jsonl, checkpoints/{last,best}.pt, summary.json.
Every file is written to a temp name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from genimage_fast.atomic import atomic_write_text
from genimage_fast.config import RecipeConfig, dump_config


def git_commit() -> str:
    """The commit of the source tree this package runs from ('unknown' outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


class RunDir:
    """Paths of one run and the writers for its small files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.run_info = self.root / "run.json"
        self.metrics = self.root / "metrics.jsonl"
        self.summary = self.root / "summary.json"
        self.checkpoints = self.root / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"

    def write_config(self, cfg: RecipeConfig, extra: dict[str, Any]) -> None:
        """config.yaml (the resolved recipe, loadable by load_config) and run.json (provenance)."""
        commit = git_commit()
        atomic_write_text(self.config, f"# genimage-fast train, git commit {commit}\n{dump_config(cfg)}")
        info = {"git_commit": commit, "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
        atomic_write_text(self.run_info, json.dumps(info, indent=2) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary, json.dumps(summary, indent=2) + "\n")
