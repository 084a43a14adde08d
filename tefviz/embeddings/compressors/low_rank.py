"""Low-rank embedding: the best rank-r approximation of W (truncated SVD), stored as two factors."""

from __future__ import annotations

import torch

from tefviz.embeddings.compressors import register
from tefviz.embeddings.compressors.base import DENSE_BYTES_PER_VALUE, CompressedEmbedding, Compressor, Param


class LowRankEmbedding(CompressedEmbedding):
    def __init__(self, left: torch.Tensor, right: torch.Tensor) -> None:
        self.left, self.right = left, right  # (V, r), (r, D)
        self.vocab, self.dim = left.shape[0], right.shape[1]

    def lookup(self, ids):
        return self.left[ids] @ self.right

    @property
    def bytes(self) -> int:
        return (self.left.numel() + self.right.numel()) * DENSE_BYTES_PER_VALUE

    def trainable(self) -> list[torch.Tensor]:
        return [self.left, self.right]


def truncated_svd(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    r = min(rank, s.numel())
    return u[:, :r] * s[:r], vh[:r]


@register
class LowRank(Compressor):
    name = "low_rank"
    order = 20
    pareto_grid = tuple([{"rank": r} for r in (16, 32, 64, 128)])
    label = "Low-rank (SVD)"
    knobs = (Param("rank", 64, 1, 4096, "r: kept singular directions", kind="rank"),)

    def compress(self, weight, priority=None, *, rank):
        return LowRankEmbedding(*truncated_svd(weight, rank))
