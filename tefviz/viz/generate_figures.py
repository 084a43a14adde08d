"""Figures for the Generation page: pure functions, data in, figure (or escaped HTML) out.

Steps are counted from 1 on screen: step k is the k-th generated token (the records of
`tefviz.generate.evicted` count from 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import plotly.graph_objects as go

from tefviz.viz.common import DROPPED, INK, REFERENCE, styled
from tefviz.viz.tokens import token_strip_html

EVICTED = DROPPED  # the run whose cache drops entries
DENSE = REFERENCE
GENERATED = 1 / 3  # on the strip's white-to-red ramp (vmax 1): light orange
DIVERGED = 1.0  # dark red


def _label(piece: str) -> str:
    return repr(piece)[1:-1][:30]


def generated_pieces(
    decode: Callable[[list[int]], str], context: Sequence[int], new_ids: Sequence[int]
) -> list[str]:
    """Each generated token's text, decoded in context so the pieces join up to the decoded text:
    a token inside a multi-byte character gets '' and the token that completes it the character
    (as tefviz.analysis.token_pieces does for a prompt). `context` (the prompt's last tokens)
    gives word-initial tokens their leading space where a tokenizer needs it."""
    ctx = list(context)
    base = decode(ctx)
    done = ""  # decoded text of the generated tokens placed so far
    pieces: list[str] = []
    waiting = 0
    for i in range(len(new_ids)):
        full = decode(ctx + list(new_ids[: i + 1]))
        text = full[len(base) :] if full.startswith(base) else decode(list(new_ids[: i + 1]))
        # an unfinished character (at most 4 bytes in UTF-8): its bytes arrive with a later token
        if text.endswith("\ufffd") and i < len(new_ids) - 1 and waiting < 3:
            pieces.append("")
            waiting += 1
            continue
        waiting = 0
        pieces.append(text[len(done) :] if text.startswith(done) else decode([new_ids[i]]))
        done = text
    return pieces


def eviction_steps(evicted: Sequence[Sequence[Sequence[int]]], layer: int | None) -> dict[int, int]:
    """position -> the step (0-based) it left the cache, from each step's per-layer evicted
    positions (`StepRecord.evicted`). `layer=None`: positions evicted from every layer, at the step
    the last layer let them go."""
    if layer is not None:
        return {p: s for s, per_layer in enumerate(evicted) for p in per_layer[layer]}
    layers = len(evicted[0]) if evicted else 0
    seen: dict[int, list[int]] = {}
    for s, per_layer in enumerate(evicted):
        for positions in per_layer:
            for p in positions:
                seen.setdefault(p, []).append(s)
    return {p: max(steps) for p, steps in seen.items() if len(steps) == layers}


def generation_strip_html(
    prompt_pieces: Sequence[str],
    new_pieces: Sequence[str],
    prompt_ids: Sequence[int],
    new_ids: Sequence[int],
    shown: int,
    evicted_at: dict[int, int] | None = None,
    diverged_at: int | None = None,
    kl: Sequence[float] | None = None,
    first_position: int = 0,
) -> str:
    """The prompt and the first `shown` generated tokens as a token strip (escaped): generated tokens
    highlighted, the token where the two runs diverge dark red, tokens evicted by step `shown`
    struck through. `first_position` is the position of prompt_pieces[0] (a strip may start later
    in the prompt); hover names each token's position, id, step and eviction."""
    evicted_at = evicted_at or {}
    pieces, values, titles, dimmed = [], [], [], []
    for j, (piece, tok) in enumerate(zip(prompt_pieces, prompt_ids, strict=True)):
        pos = first_position + j
        gone = evicted_at.get(pos)
        pieces.append(piece)
        values.append(0.0)
        dimmed.append(gone is not None and gone < shown)
        titles.append(
            f"#{pos} {piece!r} (id {tok})\nprompt" + (f"\nevicted at step {gone + 1}" if dimmed[-1] else "")
        )
    n0 = first_position + len(prompt_pieces)
    for i in range(min(shown, len(new_pieces))):
        pos, piece = n0 + i, new_pieces[i]
        gone = evicted_at.get(pos)
        pieces.append(piece)
        values.append(DIVERGED if i == diverged_at else GENERATED)
        dimmed.append(gone is not None and gone < shown)
        extra = "" if kl is None or math.isnan(kl[i]) else f"\nKL to dense {kl[i]:.4f} nats"
        titles.append(
            f"#{pos} {piece!r} (id {new_ids[i]})\ngenerated at step {i + 1}"
            + (" (first divergence)" if i == diverged_at else "")
            + extra
            + (f"\nevicted at step {gone + 1}" if dimmed[-1] else "")
        )
    return token_strip_html(pieces, values, titles, vmax=1.0, dimmed=dimmed)


def _divergence(fig: go.Figure, diverged_at: int | None) -> None:
    if diverged_at is not None:
        fig.add_vline(
            x=diverged_at + 1,
            line=dict(color=INK, dash="dot"),
            annotation_text=f"diverges at step {diverged_at + 1}",
            annotation_position="top left",
        )


def cache_size_figure(
    evicted_bytes: Sequence[int],
    dense_bytes: Sequence[int],
    evicted_entries: Sequence[int] | None = None,
    dense_entries: Sequence[int] | None = None,
    diverged_at: int | None = None,
) -> go.Figure:
    """KV-cache size (KB, all layers) at each generated token: the evicted run against dense; the
    hover adds the number of cached entries (summed over layers)."""
    steps = list(range(1, len(evicted_bytes) + 1))
    fig = go.Figure()
    for name, size, entries, colour in (
        ("dense", dense_bytes, dense_entries, DENSE),
        ("evicted", evicted_bytes, evicted_entries, EVICTED),
    ):
        if not len(size):
            continue
        fig.add_scatter(
            x=steps[: len(size)],
            y=[b / 1024 for b in size],
            name=f"{name} cache",
            mode="lines",
            line=dict(color=colour, width=2, dash="dash" if name == "dense" else "solid"),
            customdata=list(entries) if entries is not None else None,
            hovertemplate=f"{name}, step %{{x}}: %{{y:,.1f}} KB"
            + ("<br>%{customdata:,} entries" if entries is not None else "")
            + "<extra></extra>",
        )
    _divergence(fig, diverged_at)
    return styled(
        fig,
        height=300,
        margin=dict(l=60, t=30),
        xaxis_title="generated token (step)",
        yaxis_title="KV cache (KB, all layers)",
        yaxis_rangemode="tozero",
    )


def kl_figure(
    kl: Sequence[float], pieces: Sequence[str] | None = None, diverged_at: int | None = None
) -> go.Figure:
    """KL(dense || evicted) of each step's next-token distribution (nats), with its mean."""
    steps = list(range(1, len(kl) + 1))
    ys = [None if math.isnan(v) else v for v in kl]
    finite = [v for v in ys if v is not None]
    labels = [_label(p) for p in pieces] if pieces is not None else [""] * len(kl)
    fig = go.Figure(
        go.Bar(
            x=steps,
            y=ys,
            marker_color=EVICTED,
            name="KL",
            customdata=labels,
            hovertemplate="step %{x} %{customdata}<br>KL %{y:.4f} nats<extra></extra>",
        )
    )
    if finite:
        mean = sum(finite) / len(finite)
        fig.add_hline(
            y=mean,
            line=dict(color=INK, dash="dash"),
            annotation_text=f"mean {mean:.3f}",
            annotation_position="top right",
        )
    _divergence(fig, diverged_at)
    return styled(
        fig,
        height=300,
        margin=dict(l=60, t=30),
        bargap=0.1,
        xaxis_title="generated token (step)",
        yaxis_title="KL(dense ‖ evicted), nats",
        yaxis_rangemode="tozero",
        showlegend=False,
    )
