"""The interface of every embedding compressor: a trained V x D matrix in, a compressed
embedding out that looks rows up, counts its bytes, and (for the tied output head) can be
materialised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from tefviz.errors import InputError

DENSE_BYTES_PER_VALUE = 2  # the shipped checkpoints store fp16


@dataclass(frozen=True)
class Knob:
    name: str
    default: int
    lo: int
    hi: int
    help: str


class CompressedEmbedding:
    """What a compressor returns."""

    vocab: int
    dim: int

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows for ids (...,) -> (..., D), without building the V x D matrix where the method allows."""
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        return self.lookup(torch.arange(self.vocab))

    @property
    def bytes(self) -> int:
        raise NotImplementedError


class Compressor:
    name: ClassVar[str]
    label: ClassVar[str]
    knobs: ClassVar[tuple[Knob, ...]]

    def compress(self, weight: torch.Tensor, priority: torch.Tensor | None = None, **knobs: int
                 ) -> CompressedEmbedding:
        raise NotImplementedError

    def checked(self, knobs: dict) -> dict:
        known = {k.name: k for k in self.knobs}
        unknown = set(knobs) - set(known)
        if unknown:
            raise InputError(f"{self.label} has no setting(s) {sorted(unknown)}")
        out = {}
        for k in self.knobs:
            v = knobs.get(k.name, k.default)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"{k.name} must be an integer, got {v!r}")
            if not k.lo <= v <= k.hi:
                raise InputError(f"{k.name} must lie in [{k.lo}, {k.hi}], got {v}")
            out[k.name] = v
        return out


def dense_bytes(vocab: int, dim: int) -> int:
    return vocab * dim * DENSE_BYTES_PER_VALUE
