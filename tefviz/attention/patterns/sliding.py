"""Sliding window: each token sees the w/2 tokens on either side (the lecture's definition;
w = 4 gives about 5n active cells)."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def sliding_mod(window: int, causal: bool):
    half = window // 2

    def mod(b, h, q, kv):
        near = (q - kv).abs() <= half
        return near & (q >= kv) if causal else near

    return mod


@register
class Sliding(PatternKind):
    name = "sliding"
    label = "Sliding window"
    definition = "|q - k| <= w/2 (and q >= k when causal)"
    params = (Param("window", 4, 1, 65_536, "w: the window's width, w/2 on each side"),
              Param("causal", 0, 0, 1, "1: only the past half of the window"))

    def build(self, n: int, window: int, causal: int) -> Pattern:
        if window > 2 * n:
            raise InputError(f"a window of {window} is longer than the sequence of {n} tokens: "
                             "every token would see every other; use a smaller window or dense attention")
        return Pattern(self.name, {"window": window, "causal": causal}, sliding_mod(window, bool(causal)),
                       self.definition)
