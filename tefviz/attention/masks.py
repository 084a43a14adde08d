"""Turning a mask_mod into things to look at and count: the dense boolean matrix (small n), a
downsampled density image (any n, computed in row chunks, never n^2 at once), active cells,
and what the pattern costs against dense attention."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tefviz.attention.patterns.base import MaskMod
from tefviz.errors import InputError

MAX_DENSE = 4096  # the largest length materialised as a full boolean matrix
_CHUNK_CELLS = 1 << 24  # cells evaluated at once by the chunked routines (16 M bools)


def _zero() -> torch.Tensor:
    return torch.zeros((), dtype=torch.long)


def dense_mask(mod: MaskMod, n: int) -> torch.Tensor:
    """(n, n) bool: allowed[q, k]. For plots and small lengths only."""
    if n > MAX_DENSE:
        raise InputError(
            f"{n} tokens are too many for a dense matrix (limit {MAX_DENSE}); "
            "use the density image, which summarises blocks of cells"
        )
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    return mod(_zero(), _zero(), q, k).expand(n, n).clone()


def row_chunks(n: int):
    """[start, stop) row ranges of about _CHUNK_CELLS cells each, for chunked evaluation."""
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def density_image(mod: MaskMod, n: int, bins: int = 256) -> torch.Tensor:
    """(b, b) float: the share of allowed cells in each tile of a b x b grid over the matrix."""
    bins = max(1, min(bins, n))
    edge = torch.arange(n) * bins // n  # the tile of each row / column
    counts = torch.zeros(bins, bins)
    k = torch.arange(n)[None, :]
    for start, stop in row_chunks(n):
        q = torch.arange(start, stop)[:, None]
        m = mod(_zero(), _zero(), q, k).expand(stop - start, n).float()
        per_col_tile = torch.zeros(stop - start, bins).index_add_(1, edge, m)
        counts.index_add_(0, edge[start:stop], per_col_tile)
    sizes = torch.bincount(edge, minlength=bins).float()
    return counts / (sizes[:, None] * sizes[None, :])


def active_cells(mod: MaskMod, n: int) -> int:
    k = torch.arange(n)[None, :]
    total = 0
    for start, stop in row_chunks(n):
        q = torch.arange(start, stop)[:, None]
        total += int(mod(_zero(), _zero(), q, k).expand(stop - start, n).sum())
    return total


@dataclass(frozen=True)
class PatternCost:
    n: int
    active: int
    heads: int
    head_dim: int

    @property
    def density(self) -> float:
        return self.active / (self.n * self.n)

    @property
    def dense_flops(self) -> float:
        """QK^T and PV for every head: 4 n^2 d multiply-adds counted as FLOPs."""
        return 4.0 * self.n * self.n * self.head_dim * self.heads

    @property
    def sparse_flops(self) -> float:
        return 4.0 * self.active * self.head_dim * self.heads

    def score_bytes(self, bytes_per_value: int = 2) -> tuple[int, int]:
        """Memory for the attention scores if materialised: dense vs only the active cells."""
        return (self.n * self.n * self.heads * bytes_per_value, self.active * self.heads * bytes_per_value)

    def as_dict(self) -> dict:
        dense_b, sparse_b = self.score_bytes()
        return {
            "n": self.n,
            "active_cells": self.active,
            "cells": self.n * self.n,
            "density": round(self.density, 6),
            "active_per_token": round(self.active / self.n, 2),
            "dense_gflops": round(self.dense_flops / 1e9, 4),
            "sparse_gflops": round(self.sparse_flops / 1e9, 4),
            "score_memory_dense_mb": round(dense_b / 2**20, 3),
            "score_memory_sparse_mb": round(sparse_b / 2**20, 3),
            "saving": round(1 - self.density, 6),
        }


def pattern_cost(mod: MaskMod, n: int, heads: int = 12, head_dim: int = 64) -> PatternCost:
    return PatternCost(n, active_cells(mod, n), heads, head_dim)
