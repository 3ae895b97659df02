"""`genimage-fast spectra`: average noise-residual spectra per generator, the paper's Figure 2.

For each generator (and `real`, all reals pooled) up to N images are streamed through a
SpectrumAccumulator: |fft2| of the mean 3x3-median noise residual, as the paper (following CNNSpot)
does. Outputs in OUT: `spectra.npz` (one [3, S, S] float32 array per group, unshifted, DC at
[0, 0]), `spectra.png` (the figure) and `spectra.json` (images used, size, split and the period-2
peak score per group).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genimage_fast.atomic import atomic_path, atomic_write_text
from genimage_fast.errors import GenImageError
from genimage_fast.generators import BY_NAME
from genimage_fast.spectral.accumulate import SpectrumAccumulator
from genimage_fast.spectral.analysis import periodic_frequencies, periodic_peak_score
from genimage_fast.spectral.features import radial_frequencies, radial_profile
from genimage_fast.spectral.inputs import REAL, collect_groups, group_batches

PEAK_MARK = 5.0  # circle the period-2 bins of a panel whose grid peak score exceeds this
# Line colours of the radial profiles: the GAN in red, diffusion models in the other tab10 hues.
PROFILE_COLOURS = {
    REAL: "black", "midjourney": "tab:blue", "sdv14": "tab:orange", "sdv15": "tab:green", "adm": "tab:purple",
    "glide": "tab:brown", "wukong": "tab:pink", "vqdm": "tab:olive", "biggan": "tab:red",
}


@dataclass
class GroupSpectrum:
    name: str  # "real" or a generator name (npz key)
    title: str  # the paper's name
    spectrum: np.ndarray  # [3, S, S] float32, |fft2| of the mean residual, unshifted
    count: int  # images averaged
    split: str
    skipped: int  # chosen images that could not be decoded
    peak_score: float  # periodic_peak_score(period=2)


def title_of(name: str) -> str:
    if name == REAL:
        return "Real (ImageNet)"
    return BY_NAME[name].title if name in BY_NAME else name.capitalize()


def compute_spectra(src: str | os.PathLike, per_generator: int = 1000, size: int = 256, split: str = "val",
                    seed: int = 0) -> list[GroupSpectrum]:
    """Average residual spectra of every group in a tree or record set, streamed batch by batch."""
    results = []
    for group in collect_groups(src, per_generator, split, seed):
        accumulator = SpectrumAccumulator()
        for batch in group_batches(group, size):
            accumulator.update(batch)
        if accumulator.count == 0:
            continue  # every chosen image was unreadable: no panel rather than a crash
        spectrum = accumulator.result()
        results.append(GroupSpectrum(group.name, title_of(group.name), spectrum, accumulator.count, group.split,
                                     group.skipped, periodic_peak_score(spectrum, period=2)))
    if not results:
        raise GenImageError(f"{src}: none of the chosen images could be read")
    return results


# --- outputs --------------------------------------------------------------------------------------


def write_npz(results: list[GroupSpectrum], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{r.name: r.spectrum for r in results})


def write_json(results: list[GroupSpectrum], path: Path, settings: dict) -> None:
    payload = {**settings, "groups": {r.name: {k: v for k, v in asdict(r).items() if k not in ("spectrum", "name")}
                                      | {"size": int(r.spectrum.shape[-1])} for r in results}}
    atomic_write_text(path, json.dumps(payload, indent=2))


def display_spectrum(spectrum: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """What a panel shows, and its imshow extent: log10 of the channel-mean |F| on the orthonormal
    scale, DC centred, with the Nyquist row/column repeated on the + side so that a period-2 grid
    shows on all four edges.

    Dividing by sqrt(H * W) makes white noise the same level at any size, so panels of different
    sizes (a 128 px BigGAN beside 256 px crops) share one colour range honestly.
    """
    height, width = spectrum.shape[-2:]
    magnitude = spectrum.mean(axis=0) / np.sqrt(height * width)
    panel = np.fft.fftshift(np.log10(np.maximum(magnitude, 1e-12)))
    if height % 2 == 0:
        panel = np.concatenate([panel, panel[:1]], axis=0)
    if width % 2 == 0:
        panel = np.concatenate([panel, panel[:, :1]], axis=1)
    half_y, half_x = 0.5 + 0.5 / height, 0.5 + 0.5 / width  # bin centres run -0.5 .. 0.5
    return panel, (-half_x, half_x, -half_y, half_y)


def plot_spectra(results: list[GroupSpectrum], path: Path) -> None:
    """The figure: one centred log spectrum per group on a shared colour range, plus radial profiles."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    panels = [display_spectrum(r.spectrum) for r in results]
    pooled = np.concatenate([p.ravel() for p, _ in panels])
    vmin, vmax = np.percentile(pooled, [1.0, 99.9])
    ncols = min(5, len(results))
    nrows = -(-len(results) // ncols)
    fig = Figure(figsize=(2.35 * ncols + 1.1, 2.35 * nrows + 3.0), layout="constrained", dpi=150)
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.0] * nrows + [1.25])
    axes = []
    image = None
    for k, (result, (panel, extent)) in enumerate(zip(results, panels, strict=True)):
        ax = fig.add_subplot(grid[k // ncols, k % ncols])
        image = ax.imshow(panel, cmap="viridis", vmin=vmin, vmax=vmax, origin="lower", extent=extent,
                          interpolation="nearest")
        ax.set_title(result.title, fontsize=10, fontweight="bold")
        ax.text(0.03, 0.04, f"n={result.count}", transform=ax.transAxes, fontsize=7, color="white")
        ax.text(0.97, 0.04, f"grid {result.peak_score:.1f}x", transform=ax.transAxes, fontsize=7, color="white",
                ha="right")
        if result.peak_score > PEAK_MARK:
            _mark_grid(ax, *result.spectrum.shape[-2:])
        ax.set_xticks([-0.5, 0, 0.5])
        ax.set_yticks([-0.5, 0, 0.5])
        ax.tick_params(labelsize=7, length=2)
        if k % ncols:
            ax.set_yticklabels([])
        else:
            ax.set_ylabel("$f_y$ (cycles/px)", fontsize=8)
        if k // ncols != nrows - 1 and k + ncols < len(results):
            ax.set_xticklabels([])
        else:
            ax.set_xlabel("$f_x$ (cycles/px)", fontsize=8)
        axes.append(ax)
    for k in range(len(results), nrows * ncols):
        fig.add_subplot(grid[k // ncols, k % ncols]).set_axis_off()
    colourbar = fig.colorbar(image, ax=axes, shrink=0.85, pad=0.01)
    colourbar.set_label(r"$\log_{10}|\mathcal{F}(\bar r)|$", fontsize=9)
    colourbar.ax.tick_params(labelsize=7)
    _plot_profiles(fig.add_subplot(grid[nrows, :]), results)
    fig.suptitle("Spectra of the mean noise residual (image - 3x3 median)", fontsize=11)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _mark_grid(ax, height: int, width: int) -> None:  # noqa: ANN001 - a matplotlib Axes
    """Circle the period-2 frequencies (on both edges for the Nyquist ones, as the panel repeats them)."""
    points = set()
    for u, v in periodic_frequencies(height, width, 2):
        fy, fx = np.fft.fftfreq(height)[u], np.fft.fftfreq(width)[v]
        for y in {fy, -fy}:
            for x in {fx, -fx}:
                points.add((x, y))
    xs, ys = zip(*sorted(points), strict=True)
    ax.scatter(xs, ys, s=70, facecolors="none", edgecolors="red", linewidths=1.2, clip_on=False, zorder=3)


def _plot_profiles(ax, results: list[GroupSpectrum]) -> None:  # noqa: ANN001 - a matplotlib Axes
    for r in results:
        height, width = r.spectrum.shape[-2:]
        profile = radial_profile(r.spectrum / np.sqrt(height * width))
        freqs = radial_frequencies(height, width)
        real = r.name == REAL
        ax.semilogy(freqs[1:], profile[1:], color=PROFILE_COLOURS.get(r.name, "tab:gray"), lw=2.0 if real else 1.3,
                    ls="--" if real else "-", label=r.title)
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("radial frequency (cycles/px)", fontsize=9)
    ax.set_ylabel("azimuthal mean of $|\\mathcal{F}(\\bar r)|$", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(5, len(results)), loc="upper center", bbox_to_anchor=(0.5, -0.22),
              frameon=False)


# --- command ---------------------------------------------------------------------------------------


def spectra_command(src: str, out: str, per_generator: int = 1000, size: int = 256, split: str = "val") -> int:
    """`genimage-fast spectra SRC_OR_RECORDS --out DIR [--per-generator N] [--size S] [--split SPLIT]`."""
    if per_generator < 1 or size < 8:
        raise GenImageError(f"need --per-generator >= 1 and --size >= 8, got {per_generator} and {size}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise GenImageError(f"--out {out}: exists and is not a folder")
    results = compute_spectra(src, per_generator=per_generator, size=size, split=split)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_npz(results, out_dir / "spectra.npz")
    write_json(results, out_dir / "spectra.json",
               {"source": str(Path(src).resolve()), "per_generator": per_generator, "size": size, "split": split})
    plot_spectra(results, out_dir / "spectra.png")
    lines = [f"{'group':<12} {'title':<16} {'split':<6} {'images':>7} {'size':>5} {'skipped':>8} {'grid peak':>10}"]
    for r in results:
        lines.append(f"{r.name:<12} {r.title:<16} {r.split:<6} {r.count:>7} {r.spectrum.shape[-1]:>5} "
                     f"{r.skipped:>8} {r.peak_score:>10.2f}")
    sys.stdout.write("\n".join(lines) + f"\nwrote {out_dir}/spectra.npz, spectra.png, spectra.json\n")
    return 0
