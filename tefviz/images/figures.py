"""The figures the Images page draws for one image at one setting, as lazy specs: a tokenizer's
`figures` picks from the helpers here, the page draws each spec through its shared figure cache
(`ui.charts.chart`) and the benchmark builds the same specs. No model and no Streamlit here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch

from tefviz.images.spectral import log_magnitude, lowpass_reconstruction, rank_k_reconstruction
from tefviz.viz.image_figures import (
    cumulative_figure,
    energy_curve_figure,
    explained_variance_figure,
    image_figure,
    patch_overlay_figure,
    score_heatmap_figure,
    spectrum_figure,
)


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the page: `build()` makes it (only when it is not cached yet)."""

    key: str  # the chart's key on the page (unique per page)
    build: Callable[[], go.Figure]
    depends: Literal["image", "setting", "label"] = "setting"  # what the figure changes with


def on_grid(values: np.ndarray, positions: np.ndarray, grid: int, fill: float | bool = 0) -> np.ndarray:
    """Per-token values -> (grid, grid) by each token's grid cell; cells without a token get `fill`."""
    out = np.full(grid * grid, fill, dtype=np.asarray(values).dtype)
    out[positions] = values
    return out.reshape(grid, grid)


def input_figure(image: np.ndarray, key: str) -> FigureSpec:
    """The model input itself (the same at every setting)."""
    return FigureSpec(key, lambda: image_figure(image, "Model input"), "image")


def patch_score_figures(
    image: np.ndarray,
    scores: np.ndarray,
    keep: np.ndarray,
    positions: np.ndarray,
    grid: int,
    patch: int,
    score_name: str,
    t: float | None,
) -> list[FigureSpec]:
    """Kept and dropped patches over the image, the score heatmap, and the sorted shares with their
    running sum: for tokenizers whose tokens are grid patches with a score each."""
    keep_grid = on_grid(keep, positions, grid, False)
    score_grid = on_grid(scores, positions, grid, 0.0)
    shares = scores / max(scores.sum(), 1e-12)
    return [
        FigureSpec(
            "overlay",
            lambda: patch_overlay_figure(
                image, keep_grid, score_grid, patch, "Kept (blue) and dropped (red) patches"
            ),
        ),
        FigureSpec(
            "scores",
            lambda: score_heatmap_figure(score_grid, keep_grid, score_name, f"Patch scores ({score_name})"),
        ),
        FigureSpec(
            "cumulative", lambda: cumulative_figure(shares, keep, t, "Sorted shares and their running sum")
        ),
    ]


def lowpass_figures(image: np.ndarray, side: int, kept_tokens: int) -> list[FigureSpec]:
    """The input, its log spectrum with the kept square of `side`, and the image rebuilt from it."""
    image_t = torch.from_numpy(image)
    return [
        input_figure(image, "fft_input"),
        FigureSpec(
            "spectrum",
            lambda: spectrum_figure(
                log_magnitude(image_t).numpy(), side, f"log spectrum, kept square {side}x{side}"
            ),
        ),
        FigureSpec(
            "lowpass",
            lambda: image_figure(
                lowpass_reconstruction(image_t, side).numpy(),
                f"Rebuilt from the kept frequencies ({kept_tokens} tokens) and their conjugate partners",
            ),
        ),
    ]


def rank_k_figures(
    image: np.ndarray, shares: np.ndarray, keep: np.ndarray, t: float | None
) -> list[FigureSpec]:
    """The input, its rank-k reconstruction from the kept singular components, and their explained
    variance sorted with the running sum."""
    k = int(keep.sum())
    return [
        input_figure(image, "svd_input"),
        FigureSpec(
            "rank_k",
            lambda: image_figure(
                rank_k_reconstruction(torch.from_numpy(image), k).numpy(),
                f"Rank-{k} reconstruction (the kept components)",
            ),
        ),
        FigureSpec(
            "svd_cumulative",
            lambda: cumulative_figure(shares, keep, t, "Explained variance, sorted", "singular components"),
        ),
    ]


def spectrum_views(view: torch.Tensor, side: int, sides: list[int], energy: np.ndarray) -> list[FigureSpec]:
    """Training-free: the log spectrum of `view` with the square of `side`, the image rebuilt from
    it, and the energy inside each square of `sides` (`energy`: their shares)."""
    inside = f"log spectrum: {energy[sides.index(side)]:.1%} of the energy inside"
    return [
        FigureSpec("free_spectrum", lambda: spectrum_figure(log_magnitude(view).numpy(), side, inside)),
        FigureSpec(
            "free_lowpass",
            lambda: image_figure(
                lowpass_reconstruction(view, side).numpy(),
                "Low-pass reconstruction (the square and its conjugate partners)",
            ),
        ),
        FigureSpec(
            "free_energy", lambda: energy_curve_figure(sides, energy, side, "Energy inside the square")
        ),
    ]


def rank_views(view: torch.Tensor, k: int, ev: np.ndarray) -> list[FigureSpec]:
    """Training-free: the rank-k reconstruction of `view`, what it misses, and the explained
    variance `ev` of each singular component."""
    return [
        FigureSpec(
            "free_rank",
            lambda: image_figure(
                rank_k_reconstruction(view, k).numpy(),
                f"Rank-{k} reconstruction: {ev[:k].sum():.1%} of the variance",
            ),
        ),
        FigureSpec(
            "free_residual",
            lambda: image_figure(
                (view - rank_k_reconstruction(view, k)).numpy(), "What rank k misses", signed=True
            ),
        ),
        FigureSpec("free_ev", lambda: explained_variance_figure(ev, k, "Explained variance per component")),
    ]
