"""TOVA, token omission via attention: evict the keys the current query attends to least.

Oren, Hassid, Yarden, Adi, Schwartz (2024), "Transformers are Multi-State RNNs", arXiv:2401.06104.
At every decoding step the current token's attention over the cache, averaged over heads, is
computed per layer, and the lowest-scoring key is dropped when the cache is full (kvpress's
`TOVAPress` scores by the last query's head-averaged attention in the same way).

Here, per layer, query i scores key j <= i by its own attention to j in the dense pass, averaged
over heads: in a teacher-forced evaluation "the current query" of step i is query i itself, and
its attention row depends on tokens 0..i only. Under the "evict" rule query i keeps the keys
that carry a share t of its own attention (itself always). Unlike TOVA's streaming cache, an
evicted key may come back for a later query, and the score reads the dense prefix rather than the
already-evicted cache. The other drop modes use the last query's attention (kvpress's choice).
"""

from __future__ import annotations

import torch

from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.scorers.kv_common import head_mean_attention


@register
class TOVAScorer(TokenScorer):
    name = "tova"
    order = 30
    label = "TOVA (current query's attention)"
    description = (
        "Per block, each query keeps the keys holding a share t of its own attention, averaged "
        "over heads (Oren et al. 2024)."
    )

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        attn = head_mean_attention(model, ids)
        if progress:
            progress(1.0)
        return TokenScores(attn)
