"""Uniform scores: no preference, so the keep rule falls back on recency (ties rank the more
recent token first) and behaves like a sliding window. What near-uniform TEF gates reduce to."""

from __future__ import annotations

import torch

from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores


@register
class UniformScorer(TokenScorer):
    name = "uniform"
    order = 70
    benchmarked = True
    label = "Uniform (recency)"
    description = "Every token scores the same; ties keep the most recent tokens, like a sliding window."

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        return TokenScores(torch.ones(1, ids.shape[-1]))
