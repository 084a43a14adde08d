"""Blockwise: tokens see only their own block (4096 tokens in blocks of 512 -> 8 diagonal blocks)."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def blockwise_mod(block: int):
    def mod(b, h, q, kv):
        return (q // block) == (kv // block)

    return mod


@register
class Blockwise(PatternKind):
    name = "blockwise"
    label = "Blockwise"
    definition = "q // b == k // b"
    params = (Param("block", 64, 1, 65_536, "b: block length"),)

    def build(self, n: int, block: int) -> Pattern:
        if n % block:
            raise InputError(f"the length {n} is not a multiple of the block {block}: "
                             f"use {n - n % block or block} or {n + block - n % block}")
        return Pattern(self.name, {"block": block}, blockwise_mod(block), self.definition)
