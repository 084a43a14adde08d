"""What the KV-cache baselines share: the real per-layer attention and keys of a text (through
`tefviz.lm`), and an "evict" pass with keys a method always keeps (sinks, a recent window).

How a cache-eviction method maps onto this project's evaluation: the text is run once densely
(teacher forcing) to read attention or keys, each method turns that into per-layer scores, and
under the "evict" policy every query i keeps, per layer, the keys of its own prefix whose
normalised scores are highest while their cumulative share stays within t
(`tefviz.text.keep.causal_keep_mask`), plus what the method always keeps. Query i re-decides over
its whole prefix (an evicted key may come back for a later query); a streaming cache would evict
for good. Every score used for query i is computed from tokens 0..i only. Masks are per layer,
shared by the layer's heads, so per-head scores are averaged over heads.
"""

from __future__ import annotations

import torch
from torch import nn

from tefviz.lm import Capture, intervene, masked_forward, model_parts
from tefviz.lm.forward import check_length
from tefviz.text.filtering import DropPolicy, FilteredPass, KeepMasks, keep_masks, token_nll
from tefviz.text.scores import TokenScores


@torch.no_grad()
def head_mean_attention(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """(L, n, n) float32 on the CPU: per layer, the dense pass's attention probabilities
    averaged over heads (row i: query i over keys 0..i, zero above the diagonal)."""
    out = masked_forward(model, ids.reshape(1, -1), need_weights=True)
    return torch.stack([a[0].float().mean(0).cpu() for a in out.attentions])


@torch.no_grad()
def key_norms(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """(L, H, n) float32 on the CPU: the L2 norm of every key as the model uses it (after the
    rotary embedding, which preserves norms; grouped-query key heads repeated per query head)."""
    parts = model_parts(model)
    ids = ids.reshape(1, -1)
    check_length(parts, ids.shape[1])
    capture = Capture(qkv=True)
    with intervene(model, None, capture):
        model(input_ids=ids, use_cache=False)
    return torch.stack([capture.records[i].key[0].float().norm(dim=-1).cpu() for i in range(parts.n_layer)])


def causal(n: int, device=None) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


@torch.no_grad()
def evict_pass(model: nn.Module, ids: torch.Tensor, keys: torch.Tensor) -> FilteredPass:
    """The text's per-token loss when query i sees at layer l only the keys in keys[l, i]."""
    ids = ids.reshape(-1)
    out = masked_forward(model, ids[None], key_keep=keys.to(ids.device))
    return FilteredPass(token_nll(out.logits[0], ids).cpu(), KeepMasks(keys.cpu(), None))


@torch.no_grad()
def evict_with(
    model: nn.Module,
    ids: torch.Tensor,
    scores: TokenScores,
    t: float,
    policy: DropPolicy,
    always: torch.Tensor,
) -> FilteredPass:
    """The "evict" keep rule on `scores` at t, plus the keys in `always` ((n, n) or (L, n, n)):
    added under the share rule, ranked first within a fixed budget (`keep_masks`)."""
    return evict_pass(model, ids, keep_masks(scores, t, policy, model_parts(model).n_layer, always).keys)
