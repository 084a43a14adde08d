"""Infinity-former's continuous memory (Martins et al.): a long sequence X (L x e) becomes a
signal over [0, 1] made of N Gaussian radial basis functions, fitted by ridge regression,
B = X^T F^T (F F^T + lambda I)^-1; a query reads it through a Gaussian density N(mu, s^2) over
[0, 1], so the memory costs N rows however long the context grows.

In the paper mu and s come from learned layers. Here they come, without training, from the query
itself: it scores the key signal at the N basis centres (softmax), and the density takes that
distribution's mean and spread (plus the basis width). Not causal: the memory holds a context.
"""

from __future__ import annotations

import math

import torch

from tefviz.attention.approx import register
from tefviz.attention.approx.base import Approximation, ApproxOutput
from tefviz.errors import InputError


class RBFMemory:
    """N Gaussian bumps on [0, 1] and the ridge fit of a sequence onto them."""

    def __init__(self, n_basis: int, ridge: float = 1e-3, width: float | None = None) -> None:
        if n_basis < 2:
            raise InputError(f"the continuous memory needs at least 2 basis functions, got N = {n_basis}")
        if ridge < 0:
            raise InputError(f"the ridge penalty must be >= 0, got {ridge}")
        self.n = n_basis
        self.ridge = ridge
        self.centres = torch.linspace(0, 1, n_basis)
        self.width = width if width is not None else 1.0 / n_basis

    def psi(self, t: torch.Tensor) -> torch.Tensor:
        """(N, len(t)) basis values."""
        c = self.centres.to(t)
        return torch.exp(-((t[None, :] - c[:, None]) ** 2) / (2 * self.width**2))

    def positions(self, length: int, device=None) -> torch.Tensor:
        return (torch.arange(length, device=device, dtype=torch.float32) + 0.5) / length

    def reader(self, length: int, device=None) -> torch.Tensor:
        """G (L, N) with B = X^T G: the ridge solution F^T (F F^T + lambda I)^-1."""
        f = self.psi(self.positions(length, device))
        gram = f @ f.T + self.ridge * torch.eye(self.n, device=f.device)
        return torch.linalg.solve(gram, f).T

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """B (..., e, N) for a sequence x (..., L, e)."""
        g = self.reader(x.shape[-2], x.device).to(x.dtype)
        return x.transpose(-1, -2) @ g

    def signal(self, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The reconstruction x(t) = B psi(t): (..., len(t), e)."""
        return (b @ self.psi(t).to(b.dtype)).transpose(-1, -2)

    def read(self, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """r_n = integral N(t; mu, var) psi_n(t) dt, in closed form: (..., N)."""
        c = self.centres.to(mu)
        total = var[..., None] + self.width**2
        return self.width * torch.sqrt(1.0 / total) * torch.exp(-((mu[..., None] - c) ** 2) / (2 * total))


@register
class InfinityFormer(Approximation):
    name = "infinity_former"
    label = "∞-former (continuous memory)"
    size_name = "N"
    size_param = "n_basis"
    continuous_memory = True
    order = 20
    size_help = "basis functions"
    causal_ok = False

    def __init__(self, n_basis: int = 64, ridge: float = 1e-3) -> None:
        self.memory = RBFMemory(n_basis, ridge)

    def densities(self, q: torch.Tensor, bk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, var) per query from its scores against the key signal at the basis centres."""
        keys_at_centres = self.memory.signal(bk, self.memory.centres.to(q))  # (..., N, d)
        p = torch.softmax((q @ keys_at_centres.transpose(-1, -2)).float() * q.shape[-1] ** -0.5, -1)
        c = self.memory.centres.to(p)
        mu = (p * c).sum(-1)
        var = (p * (c - mu[..., None]) ** 2).sum(-1)
        return mu, var

    def __call__(self, q, k, v, causal=False, need_matrix=False) -> ApproxOutput:
        if causal:
            raise InputError("the continuous memory is not causal: it holds a whole context")
        length = k.shape[-2]
        if self.memory.n > length:
            raise InputError(f"N = {self.memory.n} basis functions for {length} tokens: use N <= {length}")
        bk, bv = self.memory.fit(k.float()), self.memory.fit(v.float())
        mu, var = self.densities(q.float(), bk)
        r = self.memory.read(mu, var)  # (..., n_q, N)
        out = (r @ bv.transpose(-1, -2)).to(v.dtype)
        matrix = None
        if need_matrix:
            g = self.memory.reader(length, q.device)  # (L, N)
            matrix = r @ g.T
        return ApproxOutput(out, matrix)


def gaussian_density(t: torch.Tensor, mu: float, var: float) -> torch.Tensor:
    return torch.exp(-((t - mu) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
