"""What the Efficient attention page shows, without Streamlit: one approximation set beside exact
attention on real queries, keys and values, and the error as its size grows."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tefviz.attention.approx import (
    APPROXIMATIONS,
    exact_attention,
    make_approximation,
    relative_error,
    row_kl,
)
from tefviz.errors import InputError

SIZES = (4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class Comparison:
    exact: torch.Tensor  # (n, n)
    implied: torch.Tensor  # (n, n)
    relative_error: float  # of the outputs
    mean_row_kl: float


def compare(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, method: str, size: int, causal: bool, seed: int = 0
) -> Comparison:
    """One head: q, k, v (n, d)."""
    cls = APPROXIMATIONS.get_class(method)
    if causal and not cls.causal_ok:
        raise InputError(f"{cls.label} is not causal; turn causal off to compare it")
    kwargs = {"seed": seed} if cls.seeded else {}
    exact = exact_attention(q, k, v, causal=causal)
    approx = make_approximation(method, size, **kwargs)(q, k, v, causal=causal, need_matrix=True)
    return Comparison(
        exact.matrix,
        approx.matrix,
        relative_error(approx.out, exact.out),
        float(row_kl(exact.matrix, approx.matrix).mean()),
    )


def error_sweep(q, k, v, causal: bool, sizes: tuple[int, ...] = SIZES, seeds: int = 3) -> list[dict]:
    """Relative output error and mean row KL against size for every method that fits (and, when
    causal, every causal one), averaged over `seeds` random draws where the method is random."""
    n = q.shape[-2]
    rows = []
    for method, cls in APPROXIMATIONS.items():
        if causal and not cls.causal_ok:
            continue
        for size in sizes:
            if cls.size_at_most_length and size > n:
                continue
            draws = range(seeds) if cls.seeded else range(1)
            results = [compare(q, k, v, method, size, causal, seed=s) for s in draws]
            rows.append(
                {
                    "method": method,
                    "size": size,
                    "relative_error": sum(r.relative_error for r in results) / len(results),
                    "mean_row_kl": sum(r.mean_row_kl for r in results) / len(results),
                }
            )
    return rows
