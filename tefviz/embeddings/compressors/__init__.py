"""Embedding compressors, one file per method, registered here by name.

Adding one: subclass `Compressor` in a new module (its `knobs` and `pareto_grid` say what the
page and the Pareto sweep use), decorate it with `@register`, import it below.
"""

from __future__ import annotations

import torch

from tefviz.embeddings.compressors.base import CompressedEmbedding, Compressor, Param, dense_bytes
from tefviz.registry import Registry

COMPRESSORS: Registry[type[Compressor]] = Registry("compressor")
register = COMPRESSORS.register


def compress(
    name: str, weight: torch.Tensor, priority: torch.Tensor | None = None, **knobs: int
) -> CompressedEmbedding:
    """`weight` compressed by the method `name`, its knobs checked (defaults filled in)."""
    c = COMPRESSORS.load(name)
    return c.compress(weight.detach().float(), priority, **c.checked(knobs))


from tefviz.embeddings.compressors import lora_shared, low_rank, quantised, tensor_train  # noqa: E402,F401

__all__ = ["COMPRESSORS", "CompressedEmbedding", "Compressor", "Param", "compress", "dense_bytes", "register"]
