"""Random scores, seeded: the floor any informative scorer must beat."""

from __future__ import annotations

import torch

from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores


@register
class RandomScorer(TokenScorer):
    name = "random"
    order = 80
    label = "Random"
    description = "Scores drawn uniformly at random (seeded): which tokens go is chance."

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        g = torch.Generator().manual_seed(self.seed)
        return TokenScores(torch.rand(1, ids.shape[-1], generator=g))
