"""Linformer (Wang et al.): keys and values projected along the sequence to k rows, so attention
costs n x k. The projections E, F are learned in the paper; here they are fixed random Gaussian
projections (scaled 1/sqrt(k)), which is the untrained starting point. Not causal: every output
mixes the whole sequence."""

from __future__ import annotations

import torch

from tefviz.attention.approx import register
from tefviz.attention.approx.base import Approximation, ApproxOutput
from tefviz.errors import InputError


@register
class Linformer(Approximation):
    name = "linformer"
    label = "Linformer (sequence projections)"
    size_name = "k"
    size_param = "k"
    seeded = True
    order = 10
    size_help = "projected length"
    causal_ok = False

    def __init__(self, k: int = 64, seed: int = 0) -> None:
        if k < 1:
            raise InputError(f"Linformer needs a projected length k >= 1, got {k}")
        self.k, self.seed = k, seed

    def projections(self, n: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k > n:
            raise InputError(f"k = {self.k} is longer than the sequence ({n}); k must be at most n")
        g = torch.Generator().manual_seed(self.seed)
        e = torch.randn(self.k, n, generator=g) / self.k**0.5
        f = torch.randn(self.k, n, generator=g) / self.k**0.5
        return e.to(device, dtype), f.to(device, dtype)

    def __call__(self, q, k, v, causal=False, need_matrix=False) -> ApproxOutput:
        if causal:
            raise InputError("Linformer is not causal: its projections mix the whole sequence")
        n = q.shape[-2]
        e, f = self.projections(n, q.device, q.dtype)
        kp, vp = e @ k, f @ v  # (k, d)
        p = torch.softmax((q @ kp.transpose(-1, -2)).float() * q.shape[-1] ** -0.5, -1).to(v.dtype)
        return ApproxOutput(p @ vp, p @ f if need_matrix else None)
