"""A pattern applied to the embedded LM's attention: the text's perplexity dense vs patterned, and
one layer and head's attention weights under the pattern beside dense.

The LM is causal, so the pattern is intersected with causality; a query always keeps itself.
Runs through the intervention layer `tefviz.lm` (as the text scorers do), on any supported LM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tefviz.errors import InputError
from tefviz.lm import capture_qkv, masked_forward, model_parts
from tefviz.text.filtering import token_nll


@dataclass(frozen=True)
class PatternedRun:
    dense_nll: torch.Tensor  # (n-1,) nats
    patterned_nll: torch.Tensor
    dense_attention: torch.Tensor  # (H, n, n) at the chosen layer
    patterned_attention: torch.Tensor

    @staticmethod
    def _ppl(nll: torch.Tensor) -> float:
        return math.exp(float(nll.mean())) if nll.numel() else float("nan")

    @property
    def dense_perplexity(self) -> float:
        return self._ppl(self.dense_nll)

    @property
    def patterned_perplexity(self) -> float:
        return self._ppl(self.patterned_nll)


def layer_masks(mask: torch.Tensor, n_layer: int, layers: list[int] | None) -> torch.Tensor:
    """(L, n, n) key masks: the pattern at the chosen layers (all when None), full elsewhere."""
    n = mask.shape[0]
    chosen = range(n_layer) if layers is None else layers
    bad = [i for i in chosen if not 0 <= i < n_layer]
    if bad:
        raise InputError(f"layers {bad} do not exist; the model has {n_layer} (0..{n_layer - 1})")
    out = torch.ones(n_layer, n, n, dtype=torch.bool)
    for i in chosen:
        out[i] = mask
    return out & torch.ones(n, n, dtype=torch.bool).tril()


@torch.no_grad()
def run_pattern(
    model, ids: torch.Tensor, mask: torch.Tensor, layers: list[int] | None, show_layer: int
) -> PatternedRun:
    parts = model_parts(model)
    ids = ids.reshape(-1)
    n = ids.numel()
    if tuple(mask.shape) != (n, n):
        raise InputError(f"the pattern is for {mask.shape[0]} tokens, the text has {n}")
    if not 0 <= show_layer < parts.n_layer:
        raise InputError(f"layer {show_layer} does not exist; the model has {parts.n_layer}")
    device = ids.device
    dense = masked_forward(model, ids[None], need_weights=True)
    keys = layer_masks(mask, parts.n_layer, layers).to(device)
    patterned = masked_forward(model, ids[None], key_keep=keys, need_weights=True)
    return PatternedRun(
        token_nll(dense.logits[0], ids).cpu(),
        token_nll(patterned.logits[0], ids).cpu(),
        dense.attentions[show_layer][0].cpu(),
        patterned.attentions[show_layer][0].cpu(),
    )


def qkv_at(model, ids: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The real queries, keys and values of layer `layer` for a text, as the model uses them
    (after rotary embedding; grouped-query heads repeated): each (heads, n, head_dim)."""
    return capture_qkv(model, ids, layer)
