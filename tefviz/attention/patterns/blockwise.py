"""Blockwise: tokens see only their own block (4096 tokens in blocks of 512 -> 8 diagonal blocks).
Any length works: when b does not divide n the last block is shorter (n mod b tokens), and a
block longer than the sequence is one block, as attention-gym's q // b == k // b."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind


def blockwise_mod(block: int):
    def mod(b, h, q, kv):
        return (q // block) == (kv // block)

    return mod


@register
class Blockwise(PatternKind):
    name = "blockwise"
    order = 50
    label = "Blockwise"
    definition = "q // b == k // b (blocks of b tokens; the last block is shorter when b does not divide n)"
    params = (Param("block", 64, 1, 65_536, "b: block length (the last block may be shorter)", kind="block"),)

    def build(self, n: int, block: int) -> Pattern:
        return Pattern(self.name, {"block": block}, blockwise_mod(block), self.definition)
