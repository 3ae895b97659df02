"""Reading eval results (results.json) of several runs for a report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, generator_names

ALL = "all"  # training key of a run trained on every generator
RESULT_LOCATIONS = ("results.json", "eval/results.json")  # inside a folder given instead of a file


@dataclass(frozen=True)
class RunResult:
    """One run's evaluation, as the report groups it."""

    source: Path
    method: str  # recipe name (falls back to the model name): one row of Tables 3/4/5
    train_generators: tuple[str, ...]  # () = all generators
    results: dict[str, Any]

    @property
    def train_key(self) -> str:
        """'sdv14' for a single-generator run, 'all' for all, else 'adm+glide'."""
        gens = self.train_generators
        if not gens or set(gens) >= set(GENERATOR_NAMES):
            return ALL
        return "+".join(gens)

    @property
    def benchmark(self) -> str:
        """What it was tested on: 'genimage', or another benchmark's records name (cross-benchmark)."""
        return str(self.results.get("benchmark") or "genimage")

    def accuracy(self, spec: str = "none") -> dict[str, float] | None:
        return self.results["accuracy"].get(spec)


def find_results(path: str | Path) -> Path:
    """A results.json file, or a folder holding one (directly or in eval/)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in RESULT_LOCATIONS:
            if (path / name).is_file():
                return path / name
        raise GenImageError(f"no results.json in {path} (run `genimage-fast eval` first)")
    raise GenImageError(f"results not found: {path}")


def load_run_result(path: str | Path) -> RunResult:
    file = find_results(path)
    try:
        results = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GenImageError(f"cannot read {file}: {exc}") from None
    if not isinstance(results, dict) or not isinstance(results.get("accuracy"), dict):
        raise GenImageError(f"{file} is not an eval results.json (no 'accuracy' table)")
    method = results.get("recipe") or results.get("model") or file.parent.name
    # ids such as "1" (older results) become names, so every lookup by name (Table 5) finds them
    train = tuple(generator_names(results.get("train_generators") or []))
    return RunResult(file, str(method), train, results)


def load_run_results(paths: list[str | Path]) -> list[RunResult]:
    """Load every input; two inputs for the same method and training set are ambiguous: an error."""
    if not paths:
        raise GenImageError("no results given")
    runs = [load_run_result(p) for p in paths]
    seen: dict[tuple[str, str, str], Path] = {}
    for run in runs:
        key = (run.method, run.train_key, run.benchmark)
        if key in seen:
            raise GenImageError(f"two results for {run.method} trained on {run.train_key}, tested on "
                                f"{run.benchmark}: {seen[key]} and {run.source}")
        seen[key] = run.source
    return runs
