"""Plotly figures for the Images page: pure functions, data in, figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly import colors as px_colors

from tefviz.viz.common import COLORWAY, DROPPED, INK, KEPT, cumulative_share_figure, legend_below, styled

__all__ = ["DROPPED", "KEPT"]  # re-exported: the vocabulary lives in tefviz.viz.common

_GREY = [[0, "black"], [1, "white"]]
_LIGHT = "rgb(211,211,211)"  # the "all tokens" reference bars


def _image_axes(fig: go.Figure, h: int, w: int, height: int = 320) -> go.Figure:
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain")
    return styled(fig, height=height, margin=dict(l=4, r=4, t=36, b=4))


def image_figure(image: np.ndarray, title: str = "", signed: bool = False, height: int = 320) -> go.Figure:
    """A greyscale image (H, W); `signed` centres the colour scale on zero (differences)."""
    h, w = image.shape
    kw = (
        dict(colorscale="RdBu", zmid=0)
        if signed
        else dict(colorscale=_GREY, zmin=float(min(0.0, image.min())), zmax=float(max(1.0, image.max())))
    )
    fig = go.Figure(
        go.Heatmap(z=image, showscale=signed, hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>", **kw)
    )
    fig.update_layout(title=title)
    return _image_axes(fig, h, w, height)


def patch_overlay_figure(
    image: np.ndarray, keep: np.ndarray, scores: np.ndarray | None, patch: int, title: str = ""
) -> go.Figure:
    """The model input with every dropped patch shaded red and kept patches outlined in blue; hover
    gives the patch, its score and whether it is kept. keep, scores: (grid, grid)."""
    fig = image_figure(image, title)
    g = keep.shape[0]
    shapes = []  # one layout update: add_shape per patch costs milliseconds each
    for r in range(g):
        for c in range(g):
            x0, y0 = c * patch - 0.5, r * patch - 0.5
            box = dict(type="rect", x0=x0, y0=y0, x1=x0 + patch, y1=y0 + patch)
            if keep[r, c]:
                shapes.append({**box, "line": dict(color=KEPT, width=1)})
            else:
                shapes.append({**box, "line": dict(width=0), "fillcolor": DROPPED, "opacity": 0.55})
    fig.update_layout(shapes=shapes)
    centres = (np.arange(g) + 0.5) * patch - 0.5
    cx, cy = np.meshgrid(centres, centres)
    text = [
        f"patch ({r}, {c})<br>{'kept' if keep[r, c] else 'dropped'}"
        + ("" if scores is None else f"<br>score {scores[r, c]:.3f}")
        for r in range(g)
        for c in range(g)
    ]
    fig.add_scatter(
        x=cx.ravel(),
        y=cy.ravel(),
        mode="markers",
        marker=dict(opacity=0, size=patch * 6),
        hovertext=text,
        hoverinfo="text",
        showlegend=False,
    )
    return fig


def score_heatmap_figure(scores: np.ndarray, keep: np.ndarray, score_name: str, title: str = "") -> go.Figure:
    """Per-patch scores on the token grid; dropped patches are marked with a cross."""
    g = scores.shape[0]
    fig = go.Figure(
        go.Heatmap(
            z=scores,
            colorscale="Viridis",
            colorbar=dict(title=score_name, thickness=12),
            hovertemplate="patch (%{y}, %{x})<br>" + score_name + " %{z:.3f}<extra></extra>",
        )
    )
    rows, cols = np.nonzero(~keep)
    if len(rows):
        fig.add_scatter(
            x=cols,
            y=rows,
            mode="markers",
            marker=dict(symbol="x", color=DROPPED, size=8),
            name="dropped",
            hoverinfo="skip",
        )
    fig.update_layout(title=title, showlegend=False)
    return _image_axes(fig, g, g)


def cumulative_figure(
    shares: np.ndarray,
    keep: np.ndarray,
    t: float | None,
    title: str = "",
    x_title: str = "tokens, highest share first",
) -> go.Figure:
    """Sorted shares as bars (kept and dropped in their colours) and their running sum, with the
    threshold t: the Text page's figure (`tefviz.viz.common.cumulative_share_figure`)."""
    return cumulative_share_figure(shares, keep, t, title=title, x_title=x_title, showlegend=False)


def spectrum_figure(log_magnitude: np.ndarray, side: int, title: str = "") -> go.Figure:
    """log(1 + |F|) of the centred spectrum with the kept low-pass square outlined."""
    n = log_magnitude.shape[0]
    lo = n // 2 - side // 2
    fig = go.Figure(
        go.Heatmap(
            z=log_magnitude,
            colorscale="Magma",
            showscale=False,
            hovertemplate="frequency (%{y}, %{x})<br>log(1+|F|) %{z:.2f}<extra></extra>",
        )
    )
    fig.add_shape(
        type="rect",
        x0=lo - 0.5,
        y0=lo - 0.5,
        x1=lo + side - 0.5,
        y1=lo + side - 0.5,
        line=dict(color="cyan", width=2),
    )
    fig.update_layout(title=title)
    return _image_axes(fig, n, n)


def energy_curve_figure(
    sides: Sequence[int], fractions: Sequence[float], side: int, title: str = ""
) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=list(sides),
            y=list(fractions),
            mode="lines+markers",
            hovertemplate="side %{x}: %{y:.4f} of the energy<extra></extra>",
        )
    )
    fig.add_vline(x=side, line=dict(dash="dash", color=INK, width=1))
    return styled(
        fig,
        margin=dict(l=40, r=10, t=36, b=36),
        title=title,
        xaxis_title="low-pass square side",
        yaxis_title="share of spectral energy",
    )


def explained_variance_figure(ev: np.ndarray, k: int, title: str = "") -> go.Figure:
    """Each singular component's explained variance (bars, the first k kept) and the running total."""
    ev = np.asarray(ev, dtype=float)
    return cumulative_share_figure(
        ev,
        np.arange(1, len(ev) + 1) <= k,
        None,
        title=title,
        x_title="singular component",
        y_title="explained variance",
        item="component",
        showlegend=False,
        sort=False,
    )


def probabilities_figure(
    classes: Sequence[str],
    all_tokens: np.ndarray,
    current: np.ndarray,
    current_label: str,
    true_class: int | None = None,
) -> go.Figure:
    """Class probabilities with all tokens beside those at the current setting."""
    names = [f"<b>{c}</b>" if i == true_class else c for i, c in enumerate(classes)]
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=all_tokens,
        orientation="h",
        name="all tokens",
        marker_color=_LIGHT,
        hovertemplate="%{y}: %{x:.3f}<extra>all tokens</extra>",
    )
    fig.add_bar(
        y=names,
        x=current,
        orientation="h",
        name=current_label,
        marker_color=KEPT,
        hovertemplate="%{y}: %{x:.3f}<extra>" + current_label + "</extra>",
    )
    return styled(
        fig,
        height=360,
        margin=dict(l=10, r=10, t=10, b=30),
        barmode="group",
        xaxis=dict(range=[0, 1], title="probability"),
        yaxis=dict(autorange="reversed"),
        legend=legend_below(-0.15),
    )


def accuracy_tokens_figure(
    curves: Mapping[str, Sequence[tuple[float, float, str]]],
    current: Mapping[str, tuple[float, float]] | None = None,
) -> go.Figure:
    """Accuracy vs mean tokens per image for each tokenizer (points: (tokens, accuracy, label)),
    with the current setting of each marked by a star."""
    fig = go.Figure()
    # one colour per curve: the house colorway, or D3's ten when there are more curves than it has
    palette = COLORWAY if len(curves) <= len(COLORWAY) else px_colors.qualitative.D3
    for i, (name, pts) in enumerate(curves.items()):
        pts = sorted(pts)
        colour = palette[i % len(palette)]
        fig.add_scatter(
            x=[p[0] for p in pts],
            y=[p[1] for p in pts],
            mode="lines+markers",
            name=name,
            text=[p[2] for p in pts],
            line=dict(color=colour),
            hovertemplate="%{text}<br>%{x:.1f} tokens, accuracy %{y:.3f}<extra>" + name + "</extra>",
        )
        if current and name in current:
            x, y = current[name]
            fig.add_scatter(
                x=[x],
                y=[y],
                mode="markers",
                name=f"{name} (now)",
                showlegend=False,
                marker=dict(symbol="star", size=16, color=colour, line=dict(color=INK, width=1)),
                hovertemplate="current setting<br>%{x:.1f} tokens, accuracy %{y:.3f}<extra></extra>",
            )
    return styled(
        fig,
        height=420,
        margin=dict(l=40, r=10, t=10, b=40),
        xaxis_title="mean tokens per image (CLS included)",
        yaxis_title="accuracy on the evaluation subset",
        legend=legend_below(-0.2),
    )
