"""Causal: a token sees itself and everything before it."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Pattern, PatternKind


def causal_mod(b, h, q, kv):
    return q >= kv


@register
class Causal(PatternKind):
    name = "causal"
    order = 0
    label = "Causal"
    definition = "q >= k"

    def build(self, n: int) -> Pattern:
        return Pattern(self.name, {}, causal_mod, self.definition)
