"""Dilated window: like sliding, with gaps: |q - k| <= w and (q - k) divisible by d."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def dilated_mod(window: int, dilation: int):
    def mod(b, h, q, kv):
        d = q - kv
        return (d.abs() <= window) & (d.remainder(dilation) == 0)

    return mod


@register
class Dilated(PatternKind):
    name = "dilated"
    order = 20
    label = "Dilated window"
    definition = "|q - k| <= w and (q - k) mod d == 0"
    params = (
        Param("window", 8, 1, 65_536, "w: how far each side to look"),
        Param("dilation", 2, 1, 1024, "d: look at every d-th token"),
    )

    def build(self, n: int, window: int, dilation: int) -> Pattern:
        if window >= n:
            raise InputError(f"a window of {window} reaches past the sequence of {n} tokens")
        return Pattern(
            self.name,
            {"window": window, "dilation": dilation},
            dilated_mod(window, dilation),
            self.definition,
        )
