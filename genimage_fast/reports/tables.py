"""The paper's tables built from several runs' eval results (fractions 0–1; None = missing cell).

A table is `{row: {column: value | None, ..., "avg": value | None}}`; rows and columns keep the
paper's order. Which runs fill which table (paper §3.2, §3.3):
- Table 2 (and Figure 3): one method, rows = training generator, columns = testing generator,
  from runs trained on a single generator.
- Table 3: rows = method, runs trained on one training set (SD V1.4 in the paper), clean images.
- Table 4: rows = method, each column the mean over that method's single-generator runs;
  Avg = mean of all those cells (the paper's "sixty-four results").
- Table 5: rows = method, columns = degradations, runs trained on one training set, each cell the
  accuracy on the training generator's own test subset (SD V1.4 in the paper).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genimage_fast.engine.evaluate import training_subset_accuracy
from genimage_fast.generators import GENERATOR_NAMES
from genimage_fast.reports.paper_numbers import TASK2_SPECS
from genimage_fast.reports.runs import RunResult

Table = dict[str, dict[str, float | None]]
AVG = "avg"


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _generator_row(accuracy: dict[str, float] | None) -> dict[str, float | None]:
    accuracy = accuracy or {}
    row: dict[str, float | None] = {g: accuracy.get(g) for g in GENERATOR_NAMES}
    row[AVG] = accuracy.get("mean", _mean(row.values()))
    return row


def methods(runs: Sequence[RunResult]) -> list[str]:
    """Methods in the order first seen."""
    return list(dict.fromkeys(run.method for run in runs))


def training_sets(runs: Sequence[RunResult]) -> list[str]:
    """Training keys present, single generators in paper order first, then the others."""
    keys = {run.train_key for run in runs}
    return [g for g in GENERATOR_NAMES if g in keys] + sorted(keys - set(GENERATOR_NAMES))


def cross_generator_matrix(runs: Sequence[RunResult], method: str, spec: str = "none") -> Table:
    """Table 2: rows = training generator (paper order, only those run), columns = testing generator."""
    by_train = {run.train_key: run for run in runs if run.method == method}
    return {g: _generator_row(by_train[g].accuracy(spec)) for g in GENERATOR_NAMES if g in by_train}


def methods_on_training_set(runs: Sequence[RunResult], train_key: str = "sdv14", spec: str = "none") -> Table:
    """Table 3: rows = method, for the runs trained on `train_key`."""
    return {run.method: _generator_row(run.accuracy(spec)) for run in runs if run.train_key == train_key}


def method_averages(runs: Sequence[RunResult], spec: str = "none") -> tuple[Table, dict[str, int]]:
    """Table 4: per method, each testing column averaged over its single-generator runs.

    Returns the table and how many training generators each row averages (8 in the paper).
    """
    table: Table = {}
    used: dict[str, int] = {}
    for method in methods(runs):
        matrix = cross_generator_matrix(runs, method, spec)
        if not matrix:
            continue
        row: dict[str, float | None] = {g: _mean(r[g] for r in matrix.values()) for g in GENERATOR_NAMES}
        row[AVG] = _mean(r[g] for r in matrix.values() for g in GENERATOR_NAMES)
        table[method], used[method] = row, len(matrix)
    return table, used


def degraded_specs(runs: Sequence[RunResult]) -> list[str]:
    """Table 5's columns: the paper's six in its order, then any other degradations evaluated."""
    present = {spec for run in runs for spec in run.results["accuracy"] if spec != "none"}
    return [s for s in TASK2_SPECS if s in present] + sorted(present - set(TASK2_SPECS))


def degraded_table(runs: Sequence[RunResult], train_key: str = "sdv14",
                   specs: Sequence[str] | None = None) -> Table:
    """Table 5: rows = method, columns = degradation specs; Avg only when every column is filled."""
    specs = list(specs) if specs is not None else degraded_specs(runs)
    table: Table = {}
    if not specs:
        return table
    for run in runs:
        if run.train_key != train_key:
            continue
        row: dict[str, float | None] = {}
        for spec in specs:
            accuracy = run.accuracy(spec)
            row[spec] = training_subset_accuracy(accuracy, list(run.train_generators)) if accuracy else None
        values = [row[s] for s in specs]
        row[AVG] = _mean(values) if values and None not in values else None
        table[run.method] = row
    return table
