"""BigBird: sliding window OR global tokens OR random blocks (block 64, 3 random blocks in HF)."""

from __future__ import annotations

from torch.nn.attention.flex_attention import or_masks

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.attention.patterns.global_tokens import global_mod
from tefviz.attention.patterns.random_blocks import random_block_table, random_mod
from tefviz.attention.patterns.sliding import sliding_mod
from tefviz.errors import InputError


@register
class BigBird(PatternKind):
    name = "bigbird"
    order = 60
    label = "BigBird (window + global + random)"
    definition = "|q - k| <= w/2  or  q < g or k < g  or  R[q // b, k // b]"
    params = (
        Param("window", 192, 1, 65_536, "w: sliding window width, w // 2 on each side"),
        Param("n_global", 64, 0, 4096, "g: leading global tokens"),
        Param("block", 64, 1, 65_536, "b: random block length (the last block may be shorter)", kind="block"),
        Param("per_row", 3, 0, 1024, "r: random key blocks per query block"),
        Param("seed", 0, 0, 2**31 - 1, "random seed", kind="seed"),
    )

    def build(self, n: int, window: int, n_global: int, block: int, per_row: int, seed: int) -> Pattern:
        if n_global > n:
            raise InputError(f"{n_global} global tokens do not fit a sequence of {n}")
        mods = [sliding_mod(min(window, 2 * n), False)]
        if n_global:
            mods.append(global_mod(n_global))
        extras = {"global_tokens": list(range(n_global))}
        if per_row:
            blocks = -(-n // block)  # ceil: a shorter last block when block does not divide n
            if per_row > blocks:
                raise InputError(f"{per_row} random blocks per row, but there are only {blocks} blocks")
            table = random_block_table(blocks, per_row, seed)
            mods.append(random_mod(table, block))
            extras["table"] = table
        params = {"window": window, "n_global": n_global, "block": block, "per_row": per_row, "seed": seed}
        return Pattern(self.name, params, or_masks(*mods), self.definition, extras)
