"""The figure vocabulary every page shares: the kept/dropped colours, one plotly template, and the
figures more than one page draws. Plotly and numpy only, like the rest of `tefviz.viz`.

Colours: kept is Okabe-Ito blue and dropped Okabe-Ito vermillion, the pair that stays apart under
every common colour-vision deficiency (Okabe & Ito 2008; Wong, Nature Methods 2011), and vermillion
still reads as "red" where a caption says so. The categorical colorway is the rest of that palette
(without its yellow, too faint on white, and black, lost on a dark theme).

Template: `plotly.io.templates["tefviz"]` holds the height, margins, legend, fonts and colorway.
`styled` applies it to a figure and also writes the height and margins into the figure's own
layout, because Streamlit sizes a chart from `layout.height` and its theme overwrites a template's
side margins and fonts in the browser (fonts are left to it: the app's font in the app, the
template's in an exported figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

KEPT = "rgb(0,114,178)"  # Okabe-Ito blue: kept tokens, patches, components, allowed cells
DROPPED = "rgb(213,94,0)"  # Okabe-Ito vermillion: dropped / evicted / skipped by the keep rule
REFERENCE = "rgb(90,90,90)"  # the dense baseline a method is compared with
INK = "rgb(40,40,40)"  # marks drawn over data: cumulative curves, thresholds
COLORWAY = (  # Okabe-Ito without yellow and black, kept blue first
    "rgb(0,114,178)",
    "rgb(230,159,0)",
    "rgb(0,158,115)",
    "rgb(204,121,167)",
    "rgb(86,180,233)",
    "rgb(213,94,0)",
    "rgb(153,153,153)",
)

TEMPLATE = "tefviz"
HEIGHT = 320
MARGIN = dict(l=50, r=20, t=10, b=40)
LEGEND_TOP = dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom")

pio.templates[TEMPLATE] = go.layout.Template(
    layout=dict(
        height=HEIGHT,
        margin=MARGIN,
        legend=LEGEND_TOP,
        font=dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13),
        title=dict(font=dict(size=14)),
        colorway=list(COLORWAY),
        hoverlabel=dict(namelength=-1),
    )
)


def legend_below(y: float = -0.2) -> dict:
    """A horizontal legend under the plot (for many entries): its top `y` plot heights below the
    plot, under the x-axis title (plotly grows the bottom margin to fit it)."""
    return dict(orientation="h", x=0, xanchor="left", y=y, yanchor="top")


def styled(fig: go.Figure, height: int = HEIGHT, margin: dict | None = None, **layout) -> go.Figure:
    """Apply the tefviz template, with the height and margins (template margins updated by
    `margin`) pinned in the figure's layout; other layout keys pass through."""
    fig.update_layout(template=TEMPLATE, height=height, margin={**MARGIN, **(margin or {})}, **layout)
    return fig


def cumulative_share_figure(
    shares: np.ndarray,
    kept: np.ndarray,
    t: float | None = None,
    labels: Sequence[str] | None = None,
    title: str = "",
    x_title: str = "tokens, highest share first",
    y_title: str = "share",
    item: str = "rank",
    height: int = HEIGHT,
    showlegend: bool = True,
    sort: bool = True,
) -> go.Figure:
    """The keep rule at a glance, for tokens, patches or singular components alike: shares sorted
        descending as bars (kept and dropped in their colours), their running sum on the right axis,
        and the threshold `t` it must reach. `labels` (one per share, in input order) name the bars in
        the hover; `item` names a bar's position ("rank", "component"). `sort=False` keeps the input order
    (shares that come sorted, such as singular values, whose position is their index)."""
    shares = np.asarray(shares, dtype=float)
    kept = np.asarray(kept, dtype=bool)
    order = np.argsort(-shares, kind="stable") if sort else np.arange(len(shares))
    s, k = shares[order], kept[order]
    ranks = np.arange(1, len(s) + 1)
    names = None if labels is None else np.array([labels[i] for i in order], dtype=object)
    hover = item + " %{x}" + (": %{customdata}" if names is not None else "")
    hover += "<br>" + y_title + " %{y:.4f}<extra>%{fullData.name}</extra>"
    fig = go.Figure()
    for name, colour, mask in (("kept", KEPT, k), ("dropped", DROPPED, ~k)):
        fig.add_bar(
            x=ranks[mask],
            y=s[mask],
            name=name,
            marker=dict(color=colour, line=dict(width=0)),
            customdata=None if names is None else names[mask],
            hovertemplate=hover,
        )
    fig.add_scatter(
        x=ranks,
        y=np.cumsum(s),
        yaxis="y2",
        mode="lines",
        name="cumulative",
        line=dict(color=INK, width=2),
        hovertemplate="first %{x}: %{y:.3f}<extra></extra>",
    )
    if t is not None:
        fig.add_hline(
            y=t,
            yref="y2",
            line=dict(color=INK, dash="dash", width=1),
            annotation_text=f"t = {t:g}",
            annotation_position="bottom right",
        )
    return styled(
        fig,
        height=height,
        margin=dict(r=50, t=36 if title else 10),
        title=title or None,
        barmode="overlay",
        bargap=0,
        showlegend=showlegend,
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis2=dict(
            title="cumulative",
            overlaying="y",
            side="right",
            range=[0, 1.02],
            tickvals=[0, 0.25, 0.5, 0.75, 1.0],
            showgrid=False,
        ),
    )
