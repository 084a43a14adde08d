"""Tensor-train embedding (TT-Rec / Hrinchuk et al.): V = v1 v2 v3 and D = d1 d2 d3 factorised,
the matrix stored as three cores G_k (r_{k-1}, v_k, d_k, r_k) initialised by TT-SVD of the
trained matrix. A row is a product of one slice per core: the V x D matrix is never built."""

from __future__ import annotations

import math

import torch

from tefviz.embeddings.compressors import register
from tefviz.embeddings.compressors.base import DENSE_BYTES_PER_VALUE, CompressedEmbedding, Compressor, Param
from tefviz.errors import InputError


def _factor3(x: int) -> tuple[int, int, int]:
    """Three factors of x as close to its cube root as divisibility allows (ascending)."""
    best = None
    for a in range(1, round(x ** (1 / 3)) + 2):
        if x % a:
            continue
        rest = x // a
        for b in range(a, math.isqrt(rest) + 1):
            if rest % b == 0:
                c = rest // b
                cand = (a, b, c)
                if best is None or max(cand) - min(cand) < max(best) - min(best):
                    best = cand
    return best or (1, 1, x)


def vocab_shape(vocab: int) -> tuple[int, int, int]:
    """Factors for the vocabulary, padding it (by at most 2 %) up to a product of balanced factors
    when V itself factors badly (the padded rows are never looked up)."""
    target = 2 * vocab ** (1 / 3)
    best = _factor3(vocab)
    for padded in range(vocab, vocab + max(64, vocab // 50)):
        f = _factor3(padded)
        if max(f) < max(best):
            best = f
        if max(best) <= target:
            break
    return best


class TTEmbedding(CompressedEmbedding):
    def __init__(self, cores: list[torch.Tensor], vocab: int, v_shape, d_shape) -> None:
        self.cores = cores
        self.vocab, self.dim = vocab, math.prod(d_shape)
        self.v_shape, self.d_shape = v_shape, d_shape

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        if (ids < 0).any() or (ids >= self.vocab).any():
            raise InputError(f"token ids must lie in [0, {self.vocab})")
        flat = ids.reshape(-1)
        _, v2, v3 = self.v_shape
        i1, rem = flat // (v2 * v3), flat % (v2 * v3)
        i2, i3 = rem // v3, rem % v3
        g1, g2, g3 = self.cores
        a = g1[0, i1]  # (n, d1, r1)
        b = g2[:, i2].permute(1, 0, 2, 3)  # (n, r1, d2, r2)
        c = g3[:, i3, :, 0].permute(1, 0, 2)  # (n, r2, d3)
        ab = torch.einsum("nip,npjq->nijq", a, b)
        row = torch.einsum("nijq,nqk->nijk", ab, c)
        return row.reshape(*ids.shape, self.dim)

    @property
    def bytes(self) -> int:
        return sum(c.numel() for c in self.cores) * DENSE_BYTES_PER_VALUE

    def trainable(self) -> list[torch.Tensor]:
        return list(self.cores)

    @property
    def ranks(self) -> tuple[int, int]:
        return self.cores[0].shape[-1], self.cores[1].shape[-1]


def tt_svd(weight: torch.Tensor, v_shape, d_shape, ranks: tuple[int, int]) -> list[torch.Tensor]:
    """TT-SVD of W (padded to prod(v_shape) rows) viewed as a (v1 d1) x (v2 d2) x (v3 d3) tensor."""
    v1, v2, v3 = v_shape
    d1, d2, d3 = d_shape
    full = torch.zeros(v1 * v2 * v3, d1 * d2 * d3)
    full[: weight.shape[0]] = weight
    t = full.reshape(v1, v2, v3, d1, d2, d3).permute(0, 3, 1, 4, 2, 5).reshape(v1 * d1, -1)
    u, s, vh = torch.linalg.svd(t, full_matrices=False)
    r1 = min(ranks[0], s.numel())
    g1 = u[:, :r1].reshape(1, v1, d1, r1)
    rest = (s[:r1, None] * vh[:r1]).reshape(r1 * v2 * d2, v3 * d3)
    u, s, vh = torch.linalg.svd(rest, full_matrices=False)
    r2 = min(ranks[1], s.numel())
    g2 = u[:, :r2].reshape(r1, v2, d2, r2)
    g3 = (s[:r2, None] * vh[:r2]).reshape(r2, v3, d3, 1)
    return [g1.contiguous(), g2.contiguous(), g3.contiguous()]


@register
class TensorTrain(Compressor):
    name = "tensor_train"
    order = 30
    pareto_grid = tuple([{"rank1": r, "rank2": r} for r in (16, 32, 64, 128)])
    label = "Tensor train (TT-SVD)"
    knobs = (
        Param("rank1", 16, 1, 512, "r1: first TT rank"),
        Param("rank2", 16, 1, 512, "r2: second TT rank"),
    )

    def compress(self, weight, priority=None, *, rank1, rank2):
        vocab, dim = weight.shape
        d_shape = _factor3(dim)
        if min(d_shape) == 1 and dim > 8:
            raise InputError(f"the embedding width {dim} does not factor into three parts")
        v_shape = vocab_shape(vocab)
        return TTEmbedding(tt_svd(weight, v_shape, d_shape, (rank1, rank2)), vocab, v_shape, d_shape)
