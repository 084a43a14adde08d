"""Embedding compressors, one file per method, registered here by name."""

from __future__ import annotations

import torch

from tefviz.embeddings.compressors.base import CompressedEmbedding, Compressor, Param, dense_bytes
from tefviz.errors import InputError

COMPRESSORS: dict[str, Compressor] = {}


def register(cls: type[Compressor]) -> type[Compressor]:
    if cls.name in COMPRESSORS:
        raise ValueError(f"compressor {cls.name!r} registered twice")
    COMPRESSORS[cls.name] = cls()
    return cls


def compress(name: str, weight: torch.Tensor, priority: torch.Tensor | None = None, **knobs: int
             ) -> CompressedEmbedding:
    if name not in COMPRESSORS:
        raise InputError(f"unknown compressor {name!r}; choose one of {sorted(COMPRESSORS)}")
    c = COMPRESSORS[name]
    return c.compress(weight.detach().float(), priority, **c.checked(knobs))


from tefviz.embeddings.compressors import lora_shared, low_rank, quantised, tensor_train  # noqa: E402,F401

__all__ = ["COMPRESSORS", "CompressedEmbedding", "Compressor", "Param", "compress", "dense_bytes", "register"]
