"""Attention mass received, accumulated causally (the heavy-hitter idea of H2O).

At block l, query i scores key j by the attention j has received from queries 0..i, averaged
over heads: everything query i could know when it decides, nothing from later tokens.
"""

from __future__ import annotations

import torch

from tefviz.lm import masked_forward
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores


@register
class AttentionMassScorer(TokenScorer):
    name = "attention"
    order = 60
    benchmarked = True
    label = "Attention mass received"
    description = (
        "Per block, the attention each token has received so far from the queries after it, "
        "averaged over heads (heavy hitters)."
    )

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        out = masked_forward(model, ids[None] if ids.dim() == 1 else ids, need_weights=True)
        per_block = []
        for a in out.attentions:
            received = a[0].float().mean(0)  # (q, k)
            per_block.append(received.cumsum(0))  # row i: mass from queries 0..i
            if progress:
                progress(len(per_block) / len(out.attentions))
        return TokenScores(torch.stack(per_block))
