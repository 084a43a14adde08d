"""Plotly figures for the Text page: pure functions, data in, figure out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from tefviz.viz.common import INK, REFERENCE, legend_below, styled
from tefviz.viz.common import cumulative_share_figure as _cumulative

BETTER = "rgb(33,102,172)"  # a prediction that got better (loss down)
WORSE = "rgb(215,48,39)"  # ... or worse (loss up)


def _label(piece: str) -> str:
    return repr(piece)[1:-1][:30]


def cumulative_share_figure(
    pieces: Sequence[str], shares: np.ndarray, kept: np.ndarray, t: float
) -> go.Figure:
    """Shares sorted descending (bars, kept vs dropped) and their running sum against the threshold."""
    labels = [f"#{i} {_label(p)}" for i, p in enumerate(pieces)]
    return _cumulative(shares, kept, t, labels=labels, height=300)


def loss_change_figure(
    pieces: Sequence[str], change_bits: Sequence[float | None], kept: Sequence[bool]
) -> go.Figure:
    """Per-token loss change (bits) from dropping: up = that prediction got worse."""
    xs = list(range(len(change_bits)))
    ys = [np.nan if v is None else v for v in change_bits]
    colours = [WORSE if (v or 0) > 0 else BETTER for v in change_bits]
    labels = [f"{_label(p)} ({'kept' if k else 'dropped'})" for p, k in zip(pieces, kept, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=ys,
            marker_color=colours,
            customdata=labels,
            hovertemplate="#%{x} %{customdata}<br>%{y:+.2f} bits<extra></extra>",
        )
    )
    return styled(fig, height=260, bargap=0, xaxis_title="token position", yaxis_title="loss change (bits)")


RATIO_CAP = 2.0  # the chart's top: beyond 2x dense a method has failed; its line is clipped and labelled


def perplexity_vs_kept_figure(
    table: dict,
    current: str | None = None,
    current_t: float | None = None,
    this_text: tuple[float, float] | None = None,
    cap: float = RATIO_CAP,
) -> go.Figure:
    """Held-out perplexity as a ratio to dense against kept fraction, one line per scorer (from
    `eval text`), on a linear scale up to `cap`: a line that runs away beyond it is clipped at the
    top and its legend says how far it went. The current scorer's row nearest to the current t, and
    this text's own point (kept fraction, ratio to its own dense perplexity), are marked."""
    fig = go.Figure()
    ref = table.get("reference", {}).get("perplexity") or 1.0
    for label, group in table.get("scorers", {}).items():
        rows = group["rows"]
        ratios = [r["perplexity"] / ref for r in rows]
        worst = max(ratios, default=1.0)
        name = label if worst <= cap else f"{label} (clipped: up to {worst:,.0f}x)"
        fig.add_scatter(
            x=[r["kept_fraction"] for r in rows],
            y=[min(q, cap) for q in ratios],
            mode="lines+markers",
            name=name,
            customdata=[[r["t"], r["perplexity"], q] for r, q in zip(rows, ratios, strict=True)],
            line=dict(width=3 if label == current else 1.5, dash="dot" if worst > cap else None),
            hovertemplate=(
                label + "<br>t = %{customdata[0]}<br>kept %{x:.2f}, perplexity "
                "%{customdata[1]:.2f} (%{customdata[2]:.3f}x dense)<extra></extra>"
            ),
        )
        if label == current and current_t is not None and rows:
            r = min(rows, key=lambda r: abs(r["t"] - current_t))
            fig.add_scatter(
                x=[r["kept_fraction"]],
                y=[min(r["perplexity"] / ref, cap)],
                mode="markers",
                showlegend=False,
                marker=dict(size=16, symbol="circle-open", color=INK, line=dict(width=3, color=INK)),
                hovertemplate=f"held-out at t = {r['t']}<extra></extra>",
            )
    if this_text is not None:
        fig.add_scatter(
            x=[this_text[0]],
            y=[min(this_text[1], cap)],
            mode="markers",
            name="this text, now",
            marker=dict(size=13, symbol="star", color=INK),
            hovertemplate=(f"this text: kept %{{x:.2f}}, {this_text[1]:.3f}x its dense<extra></extra>"),
        )
    fig.add_hline(y=1.0, line=dict(color=REFERENCE, dash="dot"), annotation_text=f"dense ({ref:.1f})")
    return styled(
        fig,
        height=380,
        xaxis_title="kept fraction (of query-key pairs)",
        yaxis_title="perplexity / dense",
        yaxis_range=[0.95, cap * 1.02],
        legend=legend_below(-0.25),
    )
