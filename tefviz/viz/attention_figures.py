"""Plotly figures for the Attention page: pure functions, data in, figure out."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tefviz.viz.common import KEPT, REFERENCE, TEMPLATE, legend_below, styled

_MASK_SCALE = [[0, "rgb(245,245,245)"], [1, KEPT]]  # allowed (query, key) pairs are the kept ones


def mask_heatmap(
    mask: np.ndarray, labels: Sequence[str] | None = None, path: Sequence[int] = ()
) -> go.Figure:
    """The allowed (query, key) cells; hover names both tokens. For small lengths only."""
    n = mask.shape[0]
    z = mask.astype(np.int8)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale=_MASK_SCALE,
            showscale=False,
            zmin=0,
            zmax=1,
            customdata=None
            if labels is None
            else np.array([[f"{labels[q]} ← {labels[k]}" for k in range(n)] for q in range(n)]),
            hovertemplate=(
                "query %{y} ← key %{x}"
                + ("<br>%{customdata}" if labels is not None else "")
                + "<br>allowed: %{z}<extra></extra>"
            ),
        )
    )
    if len(path) > 1:
        # the hops of a path: each step is the cell (reader, source)
        fig.add_scatter(
            x=list(path[:-1]),
            y=list(path[1:]),
            mode="markers+lines",
            name="path",
            marker=dict(size=9, color="rgb(215,48,39)"),
            line=dict(color="rgb(215,48,39)"),
            hovertemplate="hop: %{x} → %{y}<extra></extra>",
        )
    _square(fig, n, labels)
    return fig


def density_heatmap(density: np.ndarray, n: int) -> go.Figure:
    """A downsampled view for long sequences: the share of allowed cells in each tile."""
    bins = density.shape[0]
    centers = (np.arange(bins) + 0.5) * n / bins
    fig = go.Figure(
        go.Heatmap(
            z=density,
            x=centers,
            y=centers,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(title="allowed", thickness=12),
            hovertemplate="queries ≈ %{y:.0f}, keys ≈ %{x:.0f}<br>%{z:.1%} of cells allowed<extra></extra>",
        )
    )
    _square(fig, n, None)
    return fig


BLOCK_STATES = ("skipped", "partial", "full")  # the values 0, 1, 2 of a FlexAttention tile map
BLOCK_COLOURS = ("rgb(240,240,240)", "rgb(253,174,97)", KEPT)
_BLOCK_HOVER = (
    "skipped: not computed",
    "partial: mask_mod evaluated per cell",
    "full: computed without the mask",
)


def block_table_figure(table: np.ndarray, block: int, n: int) -> go.Figure:
    """FlexAttention's tile map: (query blocks, key blocks) of 0 skipped, 1 partial (the mask is
    evaluated inside), 2 full (computed without the mask), drawn over token positions. The last
    tile is shorter when block does not divide n."""
    rows, cols = table.shape
    y_edges = [min(i * block, n) for i in range(rows + 1)]
    x_edges = [min(i * block, n) for i in range(cols + 1)]
    hover = np.empty((rows, cols, 3), dtype=object)
    hover[..., 0] = np.array(_spans(y_edges), dtype=object)[:, None]
    hover[..., 1] = np.array(_spans(x_edges), dtype=object)[None, :]
    hover[..., 2] = np.array(_BLOCK_HOVER, dtype=object)[table.astype(np.intp)]
    # three flat bands on [-0.5, 2.5]: one colour per state
    scale = []
    for i, colour in enumerate(BLOCK_COLOURS):
        scale += [[i / 3, colour], [(i + 1) / 3, colour]]
    gap = 1 if max(rows, cols) <= 64 else 0  # tile borders while they can be seen
    fig = go.Figure(
        go.Heatmap(
            z=table.astype(np.int8),
            x=x_edges,
            y=y_edges,
            zmin=-0.5,
            zmax=2.5,
            colorscale=scale,
            xgap=gap,
            ygap=gap,
            customdata=hover,
            colorbar=dict(
                title="tile", tickvals=[0, 1, 2], ticktext=list(BLOCK_STATES), thickness=12, len=0.5
            ),
            hovertemplate="queries %{customdata[0]}<br>keys %{customdata[1]}"
            "<br>%{customdata[2]}<extra></extra>",
        )
    )
    _square(fig, n, None)
    return fig


def _spans(edges: Sequence[int]) -> list[str]:
    """'first–last' token of each tile between consecutive edges."""
    return [f"{a:,}–{b - 1:,}" for a, b in pairwise(edges)]


def _square(fig: go.Figure, n: int, labels: Sequence[str] | None) -> None:
    axis = dict(constrain="domain")
    if labels is not None and n <= 40:
        axis.update(tickvals=list(range(n)), ticktext=list(labels))
    fig.update_xaxes(title="key (attended to)", side="top", **axis)
    fig.update_yaxes(title="query (attending)", autorange="reversed", scaleanchor="x", **axis)
    styled(fig, height=520, margin=dict(l=60, r=20, t=60, b=20), showlegend=False)


def receptive_field_figure(reach: Sequence[float], n: int, dense: Sequence[float] | None = None) -> go.Figure:
    """Mean tokens each token has heard from after 1..L layers."""
    layers = list(range(1, len(reach) + 1))
    fig = go.Figure()
    fig.add_scatter(
        x=layers,
        y=list(reach),
        mode="lines+markers",
        name="this pattern",
        hovertemplate="after %{x} layers: %{y:.1f} tokens<extra></extra>",
    )
    if dense is not None:
        fig.add_scatter(
            x=layers, y=list(dense), mode="lines", name="full causal", line=dict(dash="dot", color=REFERENCE)
        )
    fig.add_hline(y=n, line=dict(color="black", dash="dash"), annotation_text=f"all {n} tokens")
    return styled(fig, height=300, xaxis_title="layers", yaxis_title="tokens reached (mean)")


def attention_pair_figure(
    dense: np.ndarray,
    patterned: np.ndarray,
    labels: Sequence[str],
    titles: tuple[str, str] = ("dense", "under the pattern"),
) -> go.Figure:
    """One head's attention weights, dense beside patterned, on one colour scale."""
    vmax = float(max(dense.max(), patterned.max(), 1e-9))
    fig = px.imshow(
        np.stack([dense, patterned]),
        facet_col=0,
        facet_col_spacing=0.06,
        zmin=0,
        zmax=vmax,
        color_continuous_scale="Viridis",
        template=TEMPLATE,
    )
    fig.for_each_annotation(lambda a: a.update(text=titles[int(a.text.rsplit("=", 1)[1])]))
    fig.update_traces(hovertemplate="query %{y} ← key %{x}<br>weight %{z:.3f}<extra></extra>")
    fig.update_coloraxes(colorbar=dict(title="weight", thickness=12))
    return styled(fig, height=420, margin=dict(l=40, r=20, t=40, b=30))


def bench_figure(results: dict, key: str = "impl", slopes: dict | None = None) -> go.Figure:
    """Time and peak memory against length, log-log, one line per implementation (with its fitted
    slope in the legend when given)."""
    panels = ("time per call", "peak memory over inputs")
    table: dict[str, list] = {"n": [], "value": [], "panel": [], "impl": []}
    names = {}
    for impl in sorted({r[key] for r in results.get("runs", [])}):
        rows = [r for r in results["runs"] if r[key] == impl and "median_s" in r]
        rows.sort(key=lambda r: r["n"])
        names[impl] = impl if not slopes or slopes.get(impl) is None else f"{impl} (slope {slopes[impl]})"
        for panel, values in zip(
            panels,
            ([r["median_s"] * 1e3 for r in rows], [max(r["peak_mb_over_inputs"], 0.1) for r in rows]),
            strict=True,
        ):
            table["n"] += [r["n"] for r in rows]
            table["value"] += values
            table["panel"] += [panel] * len(rows)
            table["impl"] += [names[impl]] * len(rows)
    if not table["n"]:
        return styled(make_subplots(rows=1, cols=2, subplot_titles=panels), height=360, margin=dict(t=40))
    fig = px.line(
        table,
        x="n",
        y="value",
        color="impl",
        facet_col="panel",
        markers=True,
        log_x=True,
        log_y=True,
        category_orders={"panel": list(panels), "impl": list(names.values())},
        facet_col_spacing=0.08,
        template=TEMPLATE,
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[1]))
    hover = {"x": ": %{y:.1f} ms at %{x}<extra></extra>", "x2": ": %{y:.0f} MB at %{x}<extra></extra>"}
    fig.for_each_trace(lambda tr: tr.update(hovertemplate=tr.name + hover[tr.xaxis]))
    fig.update_xaxes(title="tokens")
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_yaxes(title="ms", col=1)
    fig.update_yaxes(title="MB", col=2)
    return styled(fig, height=360, margin=dict(t=40), legend=legend_below(-0.25), legend_title_text="")


def error_vs_size_figure(rows: Sequence[dict], metric: str = "relative_error") -> go.Figure:
    """Approximation error against its size knob (m, k or N), one line per method, log-log."""
    pts = sorted(rows, key=lambda r: (r["method"], r["size"]))
    fig = px.line(
        {
            "size": [r["size"] for r in pts],
            metric: [max(r[metric], 1e-6) for r in pts],
            "method": [r["method"] for r in pts],
        },
        x="size",
        y=metric,
        color="method",
        markers=True,
        log_x=True,
        log_y=True,
        template=TEMPLATE,
    )
    fig.for_each_trace(lambda tr: tr.update(hovertemplate=tr.name + ": size %{x}, %{y:.4f}<extra></extra>"))
    return styled(
        fig,
        xaxis_title="m (Performer) / k (Linformer) / N (∞-former)",
        yaxis_title=metric.replace("_", " "),
        legend_title_text="",
    )


def signal_figure(
    t: np.ndarray, original: np.ndarray, reconstruction: np.ndarray, t_fine: np.ndarray
) -> go.Figure:
    """One channel of a memory: the sequence as points and its continuous reconstruction."""
    fig = go.Figure()
    fig.add_scatter(
        x=t, y=original, mode="markers", name="the sequence", marker=dict(size=4, color=REFERENCE)
    )
    fig.add_scatter(
        x=t_fine,
        y=reconstruction,
        mode="lines",
        name="continuous memory",
        line=dict(color="rgb(215,48,39)", width=2),
    )
    return styled(fig, height=300, xaxis_title="position t in [0, 1]", yaxis_title="value")
