"""Per-row absmax quantisation at b bits, and its dynamic bit-width form: the highest-priority
share p of tokens (by default the most frequent, from the tokenizer's merge order) kept at high
bits, the rest at low bits."""

from __future__ import annotations

import torch

from tefviz.embeddings.compressors import register
from tefviz.embeddings.compressors.base import CompressedEmbedding, Compressor, Param

SCALE_BYTES = 2  # one fp16 scale per row


def absmax_quantise(rows: torch.Tensor, bits: int) -> torch.Tensor:
    """Rows rounded to symmetric signed b-bit integers times a per-row absmax scale, returned
    dequantised; 1 bit is the sign times the row's mean magnitude."""
    if bits == 1:
        return torch.sign(rows) * rows.abs().mean(-1, keepdim=True)
    levels = 2 ** (bits - 1) - 1
    scale = rows.abs().amax(-1, keepdim=True).clamp_min(1e-12) / levels
    return torch.round(rows / scale).clamp(-levels, levels) * scale


class QuantisedEmbedding(CompressedEmbedding):
    def __init__(self, weight: torch.Tensor, bits_per_row: torch.Tensor) -> None:
        self.vocab, self.dim = weight.shape
        self.bits_per_row = bits_per_row
        self.table = torch.empty_like(weight)
        for b in bits_per_row.unique().tolist():
            rows = bits_per_row == b
            self.table[rows] = absmax_quantise(weight[rows], int(b))

    def lookup(self, ids):
        return self.table[ids]

    @property
    def bytes(self) -> int:
        return int(self.bits_per_row.sum()) * self.dim // 8 + self.vocab * SCALE_BYTES


def default_priority(vocab: int) -> torch.Tensor:
    """Byte-level BPE ids follow merge order, and earlier merges are more frequent pairs: a
    data-free proxy for frequency (higher = more frequent)."""
    return -torch.arange(vocab, dtype=torch.float)


@register
class Quantised(Compressor):
    name = "quantised"
    order = 0
    pareto_grid = tuple([{"bits": b} for b in (8, 6, 4, 3, 2)])
    label = "Quantised (per-row absmax)"
    knobs = (Param("bits", 8, 1, 8, "b: bits per value"),)

    def compress(self, weight, priority=None, *, bits):
        return QuantisedEmbedding(weight, torch.full((weight.shape[0],), bits))


@register
class DynamicBits(Compressor):
    name = "dynamic_bits"
    order = 10
    pareto_grid = (
        {"high_bits": 8, "low_bits": 3, "high_share": 20},
        *({"high_bits": 4, "low_bits": 3, "high_share": p} for p in (10, 30, 50)),
    )
    label = "Dynamic bit-width"
    knobs = (
        Param("high_bits", 8, 2, 8, "bits for the high-priority tokens"),
        Param("low_bits", 2, 1, 8, "bits for the rest"),
        Param("high_share", 10, 0, 100, "% of tokens at high bits"),
    )

    def compress(self, weight, priority=None, *, high_bits, low_bits, high_share):
        vocab = weight.shape[0]
        priority = default_priority(vocab) if priority is None else priority
        n_high = round(vocab * high_share / 100)
        bits = torch.full((vocab,), low_bits)
        bits[torch.argsort(priority, descending=True)[:n_high]] = high_bits
        return QuantisedEmbedding(weight, bits)
