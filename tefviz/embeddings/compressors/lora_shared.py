"""A shared low-precision base plus a LoRA-style low-rank correction: W ~ Q_b(W) + A B, with A B
the best rank-r fit of the quantisation residual (the base can be shared across models or tasks;
the small factors adapt it)."""

from __future__ import annotations

import torch

from tefviz.embeddings.compressors import register
from tefviz.embeddings.compressors.base import DENSE_BYTES_PER_VALUE, CompressedEmbedding, Compressor, Param
from tefviz.embeddings.compressors.low_rank import truncated_svd
from tefviz.embeddings.compressors.quantised import QuantisedEmbedding


class LoRAEmbedding(CompressedEmbedding):
    def __init__(self, base: QuantisedEmbedding, left: torch.Tensor, right: torch.Tensor) -> None:
        self.base, self.left, self.right = base, left, right
        self.vocab, self.dim = base.vocab, base.dim

    def lookup(self, ids):
        return self.base.lookup(ids) + self.left[ids] @ self.right

    @property
    def bytes(self) -> int:
        return self.base.bytes + (self.left.numel() + self.right.numel()) * DENSE_BYTES_PER_VALUE

    def trainable(self) -> list[torch.Tensor]:
        return [self.left, self.right]  # the shared low-bit base stays fixed, as LoRA intends


@register
class LoRAShared(Compressor):
    name = "lora_shared"
    order = 40
    pareto_grid = tuple([{"bits": b, "rank": r} for b in (2, 3) for r in (8, 32)])
    label = "Shared low-bit base + LoRA"
    knobs = (
        Param("bits", 2, 1, 8, "b: bits of the shared base"),
        Param("rank", 16, 1, 1024, "r: rank of the correction", kind="rank"),
    )

    def compress(self, weight, priority=None, *, bits, rank):
        base = QuantisedEmbedding(weight, torch.full((weight.shape[0],), bits))
        return LoRAEmbedding(base, *truncated_svd(weight - base.table, rank))
