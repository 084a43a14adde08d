"""Tokens as a coloured strip of HTML. Every piece of text is escaped: input is untrusted."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

# white -> orange -> dark red; readable with black text up to the top band
_STOPS = [(255, 255, 255), (255, 214, 153), (250, 140, 80), (215, 48, 39)]


def colour(value: float, vmax: float) -> str:
    """An rgb() colour for value in [0, vmax] on the white-to-red ramp."""
    if math.isnan(value) or vmax <= 0:
        return "rgb(238,238,238)"
    x = min(max(value / vmax, 0.0), 1.0) * (len(_STOPS) - 1)
    i = min(int(x), len(_STOPS) - 2)
    f = x - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(_STOPS[i], _STOPS[i + 1], strict=True))
    return f"rgb({r},{g},{b})"


def _visible(piece: str) -> str:
    """Whitespace made visible so every token has a box to hover."""
    if piece == "":
        return "\u2026"  # continuation bytes of a multi-byte character
    return piece.replace("\n", "\u21b5\n").replace("\t", "\u2192")


def token_strip_html(
    pieces: Sequence[str],
    values: Sequence[float],
    titles: Sequence[str],
    vmax: float | None = None,
    dimmed: Sequence[bool] | None = None,
) -> str:
    """<div> of <span>s coloured by value, with a hover title; everything escaped."""
    finite = [v for v in values if not math.isnan(v)]
    top = vmax if vmax is not None else (max(finite) if finite else 1.0)
    spans = []
    for i, (p, v, t) in enumerate(zip(pieces, values, titles, strict=True)):
        style = f"background:{colour(v, top)};"
        if dimmed is not None and dimmed[i]:
            style += "opacity:0.35;text-decoration:line-through;"
        spans.append(
            f'<span class="tok" style="{style}" title="{html.escape(t, quote=True)}">'
            f"{html.escape(_visible(p))}</span>"
        )
    return (
        '<div class="tefviz-strip" style="font-family:ui-monospace,monospace;font-size:0.9rem;'
        'line-height:1.9;white-space:pre-wrap;word-break:break-word;">'
        "<style>.tefviz-strip .tok{padding:1px 0;border-radius:3px;"
        "box-shadow:inset 0 0 0 0.5px #bbb;}</style>" + "".join(spans) + "</div>"
    )
