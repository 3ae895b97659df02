"""Validation metrics and the run's metrics log (metrics.jsonl).

`accuracy_by_generator` is shared with evaluation: accuracy over each generator's subset (its
reals and fakes together, as the paper evaluates), plus the mean over the generators present.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from genimage_fast.atomic import atomic_write_text
from genimage_fast.generators import generator_name

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # probability of fake at or above which an image is called fake


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor on any device (bf16 has no numpy dtype)
        values = values.detach().cpu()
        values = values.float() if values.is_floating_point() else values
        return values.numpy()
    return np.asarray(values)


def accuracy_by_generator(scores: Any, labels: Any, generators: Any, threshold: float = THRESHOLD,
                          names: Mapping[int, str] | None = None) -> dict[str, float]:
    """{generator_name: accuracy, ..., "mean": mean over those generators} as fractions 0-1.

    scores: probability of fake per image; labels: 0 real / 1 fake; generators: generator id per
    image (-1 = unknown, reported under generator_name(-1)); names: other benchmarks' generators
    (the records' generator_names). Empty input gives {}.
    """
    scores, labels, generators = _as_numpy(scores), _as_numpy(labels), _as_numpy(generators)
    if not (len(scores) == len(labels) == len(generators)):
        raise ValueError(f"length mismatch: {len(scores)} scores, {len(labels)} labels, {len(generators)} generators")
    correct = (scores >= threshold).astype(np.int64) == labels.astype(np.int64)
    result: dict[str, float] = {}
    for gen in sorted(int(g) for g in np.unique(generators)):
        mask = generators == gen
        result[generator_name(gen, names)] = float(correct[mask].mean())
    if result:
        result["mean"] = float(np.mean(list(result.values())))
    return result


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as strings so a log line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


class MetricsLog:
    """Appends one JSON object per line; each line is flushed so a killed run keeps its history."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint's step (they will be logged again), and
        a line a kill cut in half (with a warning: it is re-logged from the checkpoint anyway)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line, record in _parse_lines(self.path) if record.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(_json_safe(record)) + "\n")
            handle.flush()


def _parse_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) for each well-formed line; a malformed line (SIGKILL mid-append leaves the
    last one cut) is skipped with a warning naming it, never a JSONDecodeError."""
    out = []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            log.warning("%s: dropping malformed line %d (a write cut short by a kill?): %.60r", path, number, line)
            continue
        out.append((line, record))
    return out


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (for tests and reports); malformed lines skipped with a warning."""
    return [record for _, record in _parse_lines(Path(path))]
