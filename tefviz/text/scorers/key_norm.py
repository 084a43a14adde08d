"""Key norm: keep the keys with the smallest L2 norm.

Devoto, Zhao, Scardapane, Minervini (2024), "A Simple and Effective L2 Norm-Based Strategy for KV
Cache Compression", arXiv:2406.11430. Keys with a low L2 norm tend to receive high attention (the
attention sinks among them), so the cache keeps the keys of lowest norm; no attention weights are
needed. NVIDIA kvpress's `KnormPress` scores each key by minus its norm, per key head.

Here, per layer, a key's norm is averaged over heads (masks are per layer) and its score is the
inverse norm, 1 / ||k||: positive, larger for smaller norms, and unchanged in its shares when all
keys are rescaled. A key's norm depends on tokens up to its own position only, and query i
normalises the scores of its own prefix, so the decision is causal. Under the "evict" rule query
i keeps the lowest-norm keys of its prefix while their cumulative share stays within t.
"""

from __future__ import annotations

import torch

from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.scorers.kv_common import key_norms


@register
class KeyNormScorer(TokenScorer):
    name = "key_norm"
    order = 50
    label = "Key norm (low L2 norm kept)"
    description = (
        "Per block, tokens whose keys have the smallest L2 norm (averaged over heads) rank first; "
        "no attention weights needed (Devoto et al. 2024)."
    )

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        norms = key_norms(model, ids).mean(1)  # (L, n)
        if progress:
            progress(1.0)
        return TokenScores(1.0 / norms.clamp_min(1e-6))
