"""Sliding window of width w.

Causal: each query sees the w tokens before it and itself, 0 <= q - k <= w (w + 1 keys once
q >= w): attention-gym's `generate_sliding_window(w)` (q - k <= w and q >= k) and Mistral's
sliding window. Not causal: each token sees w // 2 tokens on either side, |q - k| <= w // 2
(the lecture's definition; w = 4 gives about 5n active cells; an odd w rounds down, so w = 5
gives the same mask as w = 4)."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def sliding_mod(window: int, causal: bool):
    """causal: 0 <= q - k <= window; not causal: |q - k| <= window // 2."""
    if causal:

        def mod(b, h, q, kv):
            d = q - kv
            return (d >= 0) & (d <= window)

        return mod

    half = window // 2

    def mod(b, h, q, kv):
        return (q - kv).abs() <= half

    return mod


@register
class Sliding(PatternKind):
    name = "sliding"
    order = 10
    label = "Sliding window"
    definition = (
        "causal: 0 <= q - k <= w (a w-token look-back, as attention-gym and Mistral); "
        "not causal: |q - k| <= w // 2 (w/2 each side, the lecture's; odd w rounds down)"
    )
    params = (
        Param(
            "window",
            4,
            1,
            65_536,
            "w: causal, the w tokens before and the token itself (w + 1 keys); "
            "not causal, w // 2 on each side (odd w rounds down)",
        ),
        Param(
            "causal", 0, 0, 1, "1: 0 <= q - k <= w (look back w tokens); 0: |q - k| <= w // 2", kind="bool"
        ),
    )

    def build(self, n: int, window: int, causal: int) -> Pattern:
        if causal and window > n:
            raise InputError(
                f"a causal window of {window} is longer than the sequence of {n} tokens: "
                "every token would see its whole prefix; use a smaller window or the "
                "causal pattern"
            )
        if not causal and window > 2 * n:
            raise InputError(
                f"a window of {window} is longer than the sequence of {n} tokens: "
                "every token would see every other; use a smaller window or dense attention"
            )
        return Pattern(
            self.name,
            {"window": window, "causal": causal},
            sliding_mod(window, bool(causal)),
            self.definition,
        )
