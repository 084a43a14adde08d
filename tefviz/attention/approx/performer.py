"""Performer FAVOR+ (Choromanski et al.): positive orthogonal random features for the softmax
kernel, non-causal by two matrix products and causal by prefix sums (chunked), both linear in n."""

from __future__ import annotations

import math

import torch

from tefviz.attention.approx import register
from tefviz.attention.approx.base import Approximation, ApproxOutput
from tefviz.errors import InputError


def orthogonal_gaussian(m: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """(m, d): stacked blocks of orthogonal rows (QR of Gaussian matrices), each row rescaled to the
    norm of a Gaussian vector (chi distributed), so rows are marginally N(0, I) yet orthogonal."""
    blocks = []
    for _ in range(math.ceil(m / d)):
        g = torch.randn(d, d, generator=generator)
        qmat, _ = torch.linalg.qr(g)
        blocks.append(qmat.T)
    w = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=generator).norm(dim=1)
    return w * norms[:, None]


def positive_features(x: torch.Tensor, w: torch.Tensor, is_query: bool) -> torch.Tensor:
    """phi(x) = m^-1/2 exp(w x - |x|^2 / 2 - c): c is a max for stability (per row for queries,
    where it cancels in the normalisation; one value for all keys, where it must be shared)."""
    proj = x @ w.T  # (..., n, m)
    sq = (x * x).sum(-1, keepdim=True) / 2
    z = proj - sq
    c = z.amax(-1, keepdim=True) if is_query else z.amax(dim=(-1, -2), keepdim=True)
    return torch.exp(z - c) / math.sqrt(w.shape[0])


@register
class Performer(Approximation):
    name = "performer"
    label = "Performer (FAVOR+)"
    size_name = "m"
    size_param = "m"
    size_at_most_length = False  # more random features than tokens is allowed
    seeded = True
    order = 0
    size_help = "random features"

    def __init__(self, m: int = 256, seed: int = 0, chunk: int = 128) -> None:
        if m < 1:
            raise InputError(f"Performer needs at least one random feature, got m = {m}")
        if m > 16_384:
            raise InputError(f"m = {m} random features is more than any head needs (use at most 16,384)")
        self.m, self.seed, self.chunk = m, seed, chunk

    def features(self, q, k):
        d = q.shape[-1]
        w = orthogonal_gaussian(self.m, d, torch.Generator().manual_seed(self.seed)).to(q.device, q.dtype)
        scale = d**-0.25  # so that x_q . x_k = q . k / sqrt(d)
        return positive_features(q * scale, w, True), positive_features(k * scale, w, False)

    def __call__(self, q, k, v, causal=False, need_matrix=False) -> ApproxOutput:
        pq, pk = self.features(q, k)
        matrix = None
        if need_matrix:
            a = pq @ pk.transpose(-1, -2)
            if causal:
                n = q.shape[-2]
                a = a * torch.ones(n, n, device=q.device, dtype=a.dtype).tril()
            matrix = a / a.sum(-1, keepdim=True).clamp_min(1e-30)
        if not causal:
            kv = pk.transpose(-1, -2) @ v  # (m, d_v)
            norm = pq @ pk.sum(-2, keepdim=True).transpose(-1, -2)  # (n, 1)
            return ApproxOutput((pq @ kv) / norm.clamp_min(1e-30), matrix)
        return ApproxOutput(self._causal(pq, pk, v), matrix)

    def _causal(self, pq, pk, v):
        """Prefix sums in chunks: the state S = sum phi(k) v^T carried across chunks, the c x c
        lower triangle inside each: O(n m d) time, O(c m + m d) extra memory."""
        *lead, n, m = pq.shape
        dv = v.shape[-1]
        state = pq.new_zeros(*lead, m, dv)
        zsum = pq.new_zeros(*lead, 1, m)
        out = torch.empty(*lead, n, dv, dtype=v.dtype, device=v.device)
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            q_c, k_c, v_c = pq[..., s:e, :], pk[..., s:e, :], v[..., s:e, :]
            local = (q_c @ k_c.transpose(-1, -2)).tril()
            num = q_c @ state + local @ v_c
            den = (q_c * zsum).sum(-1, keepdim=True) + local.sum(-1, keepdim=True)
            out[..., s:e, :] = num / den.clamp_min(1e-30)
            state = state + k_c.transpose(-1, -2) @ v_c
            zsum = zsum + k_c.sum(-2, keepdim=True)
        return out
