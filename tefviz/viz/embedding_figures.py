"""Plotly figures for the Embeddings page: pure functions, data in, figure out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from tefviz.viz.common import INK, legend_below, styled


@dataclass(frozen=True)
class Goal:
    """What a compressed embedding must reach: at least `compression` times fewer bytes than dense
    fp16, with held-out perplexity at most `perplexity_ratio` times dense."""

    compression: float = 4.0
    perplexity_ratio: float = 1.05

    def met(self, compression: float, perplexity_ratio: float) -> bool:
        return compression >= self.compression and perplexity_ratio <= self.perplexity_ratio

    @property
    def within(self) -> str:
        """'5 %': the perplexity allowance in words."""
        return f"{100 * (self.perplexity_ratio - 1):g} %"

    def __str__(self) -> str:
        return f"at least {self.compression:g}x fewer bytes with perplexity within {self.within} of dense"


EMBEDDINGS_GOAL = Goal()  # the one definition: the page, its figure and its sweep summary read it


def pareto_figure(
    rows: Sequence[dict], dense_bytes: int, dense_ppl: float, current: tuple[int, float] | None = None
) -> go.Figure:
    """Bytes against held-out perplexity for every method's settings; the goal region
    (`EMBEDDINGS_GOAL`: at least 4x fewer bytes, perplexity within 5 % of dense) shaded."""
    fig = go.Figure()
    fig.add_shape(
        type="rect",
        x0=1,
        x1=dense_bytes / EMBEDDINGS_GOAL.compression,
        y0=0,
        y1=dense_ppl * EMBEDDINGS_GOAL.perplexity_ratio,
        xref="x",
        yref="y",
        fillcolor="rgba(44,160,44,0.10)",
        line=dict(width=0),
        layer="below",
    )
    for method in sorted({r["method"] for r in rows}):
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["bytes"])
        knobs = [", ".join(f"{k[5:]}={v}" for k, v in r.items() if k.startswith("knob_")) for r in pts]
        fig.add_scatter(
            x=[r["bytes"] for r in pts],
            y=[r["perplexity"] for r in pts],
            mode="lines+markers",
            name=method,
            customdata=knobs,
            hovertemplate=method + " (%{customdata})<br>%{x:,} bytes, perplexity %{y:.2f}<extra></extra>",
        )
    fig.add_scatter(
        x=[dense_bytes],
        y=[dense_ppl],
        mode="markers",
        name="dense fp16",
        marker=dict(size=12, symbol="diamond", color=INK),
    )
    if current is not None:
        fig.add_scatter(
            x=[current[0]],
            y=[current[1]],
            mode="markers",
            name="current setting",
            marker=dict(size=16, symbol="circle-open", color=INK, line=dict(width=3, color=INK)),
        )
    styled(
        fig,
        height=420,
        margin=dict(l=60),
        xaxis_type="log",
        xaxis_title="embedding bytes (log)",
        yaxis_title="held-out perplexity",
        legend=legend_below(-0.2),
    )
    fig.update_yaxes(
        range=[dense_ppl * 0.97, max([dense_ppl * 1.5] + [min(r["perplexity"], dense_ppl * 3) for r in rows])]
    )
    return fig


def row_error_figure(errors: np.ndarray) -> go.Figure:
    """Reconstruction error per token id (ids follow BPE merge order: low ids merged first, more frequent)."""
    ids = np.arange(len(errors))
    fig = go.Figure(
        go.Scattergl(
            x=ids,
            y=errors,
            mode="markers",
            marker=dict(size=3, opacity=0.5),
            hovertemplate="id %{x}: %{y:.3f}<extra></extra>",
        )
    )
    return styled(
        fig,
        height=280,
        xaxis_title="token id (≈ frequency rank: earlier merges are more frequent)",
        yaxis_title="relative row error",
    )
