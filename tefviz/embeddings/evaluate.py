"""What compressing the embedding costs: held-out perplexity with the compressed matrix in place
of the trained one (input and tied output head), bytes and parameters against dense, and each
token's reconstruction error. The shared model is never modified."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tefviz.embeddings.compressors import COMPRESSORS, compress, dense_bytes
from tefviz.errors import InputError
from tefviz.lm import masked_forward, model_parts
from tefviz.text.filtering import token_nll


@dataclass(frozen=True)
class CompressionResult:
    method: str
    knobs: dict
    bytes: int
    dense_bytes: int
    perplexity: float
    dense_perplexity: float
    row_error: torch.Tensor  # (V,) relative reconstruction error per token

    @property
    def ratio(self) -> float:
        return self.dense_bytes / max(self.bytes, 1)

    def as_row(self) -> dict:
        return {
            "method": self.method,
            **{f"knob_{k}": v for k, v in self.knobs.items()},
            "bytes": self.bytes,
            "compression": round(self.ratio, 3),
            "perplexity": round(self.perplexity, 4),
            "dense_perplexity": round(self.dense_perplexity, 4),
            "perplexity_ratio": round(self.perplexity / self.dense_perplexity, 4),
            "mean_row_error": round(float(self.row_error.mean()), 5),
        }


@torch.no_grad()
def windows_perplexity(model, windows: list[torch.Tensor], embedding: torch.Tensor | None = None) -> float:
    if not windows:
        raise InputError("no held-out windows to evaluate")
    total, count = 0.0, 0
    device = model_parts(model).embedding.weight.device
    for w in windows:
        w = w.to(device)
        nll = token_nll(masked_forward(model, w[None], embedding=embedding).logits[0], w)
        total, count = total + float(nll.sum()), count + nll.numel()
    return math.exp(total / count)


def row_errors(original: torch.Tensor, approx: torch.Tensor) -> torch.Tensor:
    return (approx - original).norm(dim=1) / original.norm(dim=1).clamp_min(1e-12)


@torch.no_grad()
def evaluate_compression(
    model, windows: list[torch.Tensor], method: str, knobs: dict, dense_perplexity: float | None = None
) -> CompressionResult:
    weight = model_parts(model).embedding.weight.detach().float().cpu()
    compressed = compress(method, weight, **knobs)
    matrix = compressed.matrix()
    dense = dense_perplexity if dense_perplexity is not None else windows_perplexity(model, windows)
    return CompressionResult(
        method,
        dict(knobs),
        compressed.bytes,
        dense_bytes(*weight.shape),
        windows_perplexity(model, windows, matrix),
        dense,
        row_errors(weight, matrix),
    )


def pareto_sweep(
    model,
    windows: list[torch.Tensor],
    grid: dict[str, list[dict]] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[dict]:
    """Bytes vs perplexity for a grid of settings of every method."""
    grid = grid or {name: list(cls.pareto_grid) for name, cls in COMPRESSORS.items()}
    dense = windows_perplexity(model, windows)
    cases = [(m, k) for m, settings in grid.items() if m in COMPRESSORS for k in settings]
    rows = []
    for i, (method, knobs) in enumerate(cases):
        rows.append(evaluate_compression(model, windows, method, knobs, dense).as_row())
        if progress:
            progress((i + 1) / len(cases))
    return rows
