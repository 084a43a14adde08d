"""Plotly figures for the Text page: pure functions, data in, figure out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

KEPT = "rgb(33,102,172)"
DROPPED = "rgb(190,190,190)"


def _label(piece: str) -> str:
    return repr(piece)[1:-1][:30]


def cumulative_share_figure(
    pieces: Sequence[str], shares: np.ndarray, kept: np.ndarray, t: float
) -> go.Figure:
    """Shares sorted descending (bars, kept vs dropped) and their running sum against the threshold."""
    order = np.argsort(-shares, kind="stable")
    s = shares[order]
    cum = np.cumsum(s)
    ranks = np.arange(1, len(s) + 1)
    labels = [f"#{i} {_label(pieces[i])}" for i in order]
    colours = [KEPT if kept[i] else DROPPED for i in order]
    fig = go.Figure()
    fig.add_bar(x=ranks, y=s, marker_color=colours, name="share", customdata=labels,
                hovertemplate="rank %{x}: %{customdata}<br>share %{y:.4f}<extra></extra>")
    fig.add_scatter(x=ranks, y=cum, yaxis="y2", mode="lines", name="cumulative share",
                    line=dict(color="rgb(215,48,39)", width=2),
                    hovertemplate="top %{x}: %{y:.3f}<extra></extra>")
    fig.add_hline(y=t, yref="y2", line=dict(color="black", dash="dash"),
                  annotation_text=f"t = {t:.2f}", annotation_position="bottom right")
    fig.update_layout(
        height=300, margin=dict(l=50, r=50, t=10, b=40), bargap=0,
        xaxis_title="tokens, highest share first", yaxis_title="share",
        yaxis2=dict(title="cumulative share", overlaying="y", side="right", range=[0, 1.02],
                    tickvals=[0, 0.25, 0.5, 0.75, 1.0], showgrid=False),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig


def loss_change_figure(pieces: Sequence[str], change_bits: Sequence[float | None],
                       kept: Sequence[bool]) -> go.Figure:
    """Per-token loss change (bits) from dropping: up = that prediction got worse."""
    xs = list(range(len(change_bits)))
    ys = [np.nan if v is None else v for v in change_bits]
    colours = ["rgb(215,48,39)" if (v or 0) > 0 else "rgb(33,102,172)" for v in change_bits]
    labels = [f"{_label(p)} ({'kept' if k else 'dropped'})" for p, k in zip(pieces, kept, strict=True)]
    fig = go.Figure(go.Bar(x=xs, y=ys, marker_color=colours, customdata=labels,
                           hovertemplate="#%{x} %{customdata}<br>%{y:+.2f} bits<extra></extra>"))
    fig.update_layout(height=260, margin=dict(l=50, r=20, t=10, b=40), bargap=0,
                      xaxis_title="token position", yaxis_title="loss change (bits)")
    return fig


def perplexity_vs_kept_figure(table: dict, current: str | None = None, current_t: float | None = None,
                              this_text: tuple[float, float] | None = None) -> go.Figure:
    """Held-out perplexity against kept fraction, one line per scorer (from `eval text`); the
    current scorer's row nearest to the current t, and this text's own point, marked."""
    fig = go.Figure()
    ref = table.get("reference", {}).get("perplexity")
    for label, group in table.get("scorers", {}).items():
        rows = group["rows"]
        fig.add_scatter(x=[r["kept_fraction"] for r in rows], y=[r["perplexity"] for r in rows],
                        mode="lines+markers", name=label, customdata=[r["t"] for r in rows],
                        line=dict(width=3 if label == current else 1.5),
                        hovertemplate=label + "<br>t = %{customdata}<br>kept %{x:.2f}, "
                                              "perplexity %{y:.2f}<extra></extra>")
        if label == current and current_t is not None and rows:
            r = min(rows, key=lambda r: abs(r["t"] - current_t))
            fig.add_scatter(x=[r["kept_fraction"]], y=[r["perplexity"]], mode="markers", showlegend=False,
                            marker=dict(size=16, symbol="circle-open", line=dict(width=3, color="black")),
                            hovertemplate=f"held-out at t = {r['t']}<extra></extra>")
    if this_text is not None:
        fig.add_scatter(x=[this_text[0]], y=[this_text[1]], mode="markers", name="this text, now",
                        marker=dict(size=13, symbol="star", color="black"))
    if ref:
        fig.add_hline(y=ref, line=dict(color="grey", dash="dot"), annotation_text=f"dense {ref:.1f}")
    fig.update_layout(height=360, margin=dict(l=50, r=20, t=10, b=40), yaxis_type="log",
                      xaxis_title="kept fraction (of query-key pairs)", yaxis_title="perplexity (log)",
                      legend=dict(orientation="h", y=-0.25))
    return fig
