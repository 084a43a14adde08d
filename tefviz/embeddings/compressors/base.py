"""The interface of every embedding compressor: a trained V x D matrix in, a compressed
embedding out that looks rows up, counts its bytes, and (for the tied output head) can be
materialised."""

from __future__ import annotations

from typing import ClassVar

import torch

from tefviz.params import Param, checked_ints

DENSE_BYTES_PER_VALUE = 2  # the shipped checkpoints store fp16


class CompressedEmbedding:
    """What a compressor returns."""

    vocab: int
    dim: int

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows for ids (...,) -> (..., D), without building the V x D matrix where the method allows."""
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        return self.lookup(torch.arange(self.vocab))

    def trainable(self) -> list[torch.Tensor]:
        """The full-precision factors a fine-tune may adjust (none for purely quantised tables)."""
        return []

    @property
    def bytes(self) -> int:
        raise NotImplementedError


class Compressor:
    name: ClassVar[str]
    label: ClassVar[str]
    knobs: ClassVar[tuple[Param, ...]]
    pareto_grid: ClassVar[tuple[dict, ...]] = ()  # the settings the bytes-vs-perplexity sweep tries
    order: ClassVar[int] = 100

    def compress(
        self, weight: torch.Tensor, priority: torch.Tensor | None = None, **knobs: int
    ) -> CompressedEmbedding:
        raise NotImplementedError

    def checked(self, knobs: dict) -> dict:
        return checked_ints(self.label, self.knobs, knobs)


def dense_bytes(vocab: int, dim: int) -> int:
    return vocab * dim * DENSE_BYTES_PER_VALUE
