"""The interface of every attention approximation: queries, keys, values in, output and (for
display, small n) the implied n x n matrix out, so each can be set beside exact attention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass(frozen=True)
class ApproxOutput:
    out: torch.Tensor  # (..., n, d_v)
    matrix: torch.Tensor | None  # (..., n, n) with out = matrix @ v, when asked for


class Approximation:
    name: ClassVar[str]
    label: ClassVar[str]
    size_name: ClassVar[str]  # the knob as the paper writes it: features m, rank k, basis size N
    size_param: ClassVar[str]  # the constructor's keyword for it
    size_help: ClassVar[str]
    size_at_most_length: ClassVar[bool] = True  # the knob cannot exceed the sequence length
    seeded: ClassVar[bool] = False  # random: takes `seed`, and sweeps average over several
    causal_ok: ClassVar[bool] = True
    bench_size: ClassVar[int] = 256  # the size `bench approx` times it at
    continuous_memory: ClassVar[bool] = False  # a continuous memory of that many basis functions: drawn
    order: ClassVar[int] = 100

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        causal: bool = False,
        need_matrix: bool = False,
    ) -> ApproxOutput:
        raise NotImplementedError


def exact_attention(q, k, v, causal: bool = False) -> ApproxOutput:
    """Softmax attention, the reference: (..., n, d) each."""
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if causal:
        n = q.shape[-2]
        s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    a = torch.softmax(s.float(), -1).to(v.dtype)
    return ApproxOutput(a @ v, a)


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """||approx - exact|| / ||exact|| over the whole output."""
    return float((approx - exact).norm() / exact.norm().clamp_min(1e-30))


def row_kl(exact_matrix: torch.Tensor, approx_matrix: torch.Tensor) -> torch.Tensor:
    """KL(exact row || approximate row) per query; approximate rows are clipped to be a
    distribution (kernel methods can give tiny negatives through float error, Linformer's
    implied rows need not be one)."""
    p = exact_matrix.float().clamp_min(0)
    q = approx_matrix.float().clamp_min(1e-12)
    q = q / q.sum(-1, keepdim=True)
    return (p * (p.clamp_min(1e-12).log() - q.log())).sum(-1)
