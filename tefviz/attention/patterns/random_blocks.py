"""Random: each query block sees r key blocks drawn at random (seeded), as in BigBird, so the
table is ceil(n/b)^2, never n^2. When b does not divide n the last block is shorter (n mod b
tokens), as in blockwise."""

from __future__ import annotations

import torch

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def random_block_table(n_blocks: int, per_row: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    table = torch.zeros(n_blocks, n_blocks, dtype=torch.bool)
    for i in range(n_blocks):
        table[i, torch.randperm(n_blocks, generator=g)[:per_row]] = True
    return table


def random_mod(table: torch.Tensor, block: int):
    def mod(b, h, q, kv):
        t = table.to(q.device)
        return t[q // block, kv // block]

    return mod


@register
class RandomBlocks(PatternKind):
    name = "random"
    order = 40
    label = "Random blocks"
    definition = (
        "R[q // b, k // b], R with r random key blocks per query block (seeded); "
        "the last block is shorter when b does not divide n"
    )
    params = (
        Param("block", 64, 1, 65_536, "b: block length (the last block may be shorter)", kind="block"),
        Param("per_row", 3, 1, 1024, "r: random key blocks per query block"),
        Param("seed", 0, 0, 2**31 - 1, "random seed", kind="seed"),
    )

    def build(self, n: int, block: int, per_row: int, seed: int) -> Pattern:
        blocks = -(-n // block)  # ceil: a shorter last block when block does not divide n
        if per_row > blocks:
            raise InputError(f"{per_row} random blocks per row, but there are only {blocks} blocks")
        table = random_block_table(blocks, per_row, seed)
        return Pattern(
            self.name,
            {"block": block, "per_row": per_row, "seed": seed},
            random_mod(table, block),
            self.definition,
            {"table": table},
        )
