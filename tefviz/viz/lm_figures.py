"""Plotly figures for the language-model views."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from tefviz.viz.common import styled


def surprisal_figure(pieces: Sequence[str], bits: Sequence[float], title: str = "") -> go.Figure:
    """Surprisal (bits) of each token along the text, with its running mean."""
    xs = list(range(len(bits)))
    ys = [None if math.isnan(b) else b for b in bits]
    running, total, count = [], 0.0, 0
    for b in bits:
        if not math.isnan(b):
            total, count = total + b, count + 1
        running.append(total / count if count else None)
    labels = [repr(p)[1:-1][:30] for p in pieces]
    fig = go.Figure()
    fig.add_bar(
        x=xs,
        y=ys,
        name="surprisal",
        marker_color="rgb(250,140,80)",
        customdata=labels,
        hovertemplate="#%{x} %{customdata}<br>%{y:.2f} bits<extra></extra>",
    )
    fig.add_scatter(
        x=xs,
        y=running,
        name="running mean",
        mode="lines",
        line=dict(color="rgb(40,40,120)", width=2),
        hovertemplate="mean to #%{x}: %{y:.2f} bits<extra></extra>",
    )
    return styled(
        fig,
        margin=dict(t=40 if title else 10),
        title=title or None,
        xaxis_title="token position",
        yaxis_title="surprisal (bits)",
        bargap=0,
    )


def training_curve_figure(log: Sequence[dict]) -> go.Figure:
    """Validation loss against tokens seen, from a model card's training log."""
    fig = go.Figure()
    if log:
        tokens = [r["tokens_seen"] / 1e6 for r in log]
        fig.add_scatter(x=tokens, y=[r["valid_loss"] for r in log], name="valid loss", mode="lines+markers")
        fig.add_scatter(
            x=tokens,
            y=[r["train_loss"] for r in log],
            name="train loss (batch)",
            mode="lines",
            line=dict(dash="dot"),
        )
    return styled(fig, height=280, xaxis_title="tokens seen (millions)", yaxis_title="loss (nats/token)")
