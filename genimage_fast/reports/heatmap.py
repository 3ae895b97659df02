"""Figure 3 of the paper: the cross-generator accuracy matrix as an annotated heatmap.

Panel (a): accuracy (%) with rows = training generator, columns = testing generator (paper titles).
Panel (b), drawn when at least three training rows are complete: the Pearson correlation between
generators' rows, the paper's "generator correlations" (similar generators correlate strongly).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from genimage_fast.atomic import atomic_path
from genimage_fast.generators import BY_NAME, GENERATOR_NAMES
from genimage_fast.reports.tables import Table

MIN_ROWS_FOR_CORRELATION = 3


def matrix_array(matrix: Table) -> tuple[list[str], np.ndarray]:
    """Rows of a Table 2 matrix -> (training generator names, percent array with NaN for missing)."""
    rows = list(matrix)
    values = np.array([[np.nan if matrix[r][c] is None else 100.0 * matrix[r][c] for c in GENERATOR_NAMES]
                       for r in rows], dtype=np.float64).reshape(len(rows), len(GENERATOR_NAMES))
    return rows, values


def generator_correlation(values: np.ndarray) -> np.ndarray | None:
    """Pearson correlation between complete rows; None when fewer than three rows are complete."""
    complete = values[~np.isnan(values).any(axis=1)]
    if len(complete) < MIN_ROWS_FOR_CORRELATION:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(complete)


def _annotated(ax, values: np.ndarray, rows: list[str], cols: list[str], vmin: float, vmax: float,
               cmap: str, fmt: str, dark: Callable[[float], bool]) -> object:
    """imshow with every cell written in; `dark(v)` says where the colour map needs white text."""
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)), [BY_NAME[c].title for c in cols], rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [BY_NAME[r].title for r in rows])
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            text = "–" if np.isnan(v) else format(v, fmt)
            white = not np.isnan(v) and dark(float(v))
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if white else "black")
    return image


def save_heatmap(matrix: Table, path: Path, title: str) -> Path:
    """Draw Figure 3 for one method's matrix into `path` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, values = matrix_array(matrix)
    complete_rows = [r for r, v in zip(rows, values, strict=True) if not np.isnan(v).any()]
    corr = generator_correlation(values)
    panels = 2 if corr is not None else 1
    height = 0.55 * max(len(rows), MIN_ROWS_FOR_CORRELATION) + 2.6  # cells stay square-ish
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, height), squeeze=False)
    ax = axes[0, 0]
    image = _annotated(ax, values, rows, list(GENERATOR_NAMES), 50.0, 100.0, "viridis", ".1f", lambda v: v < 67.5)
    ax.set_xlabel("testing subset")
    ax.set_ylabel("training subset")
    ax.set_title("(a) accuracy (%)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if corr is not None:
        ax = axes[0, 1]
        image = _annotated(ax, corr, complete_rows, complete_rows, -1.0, 1.0, "coolwarm", ".2f", lambda v: abs(v) > 0.6)
        ax.set_title("(b) correlation between generators")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return Path(path)
