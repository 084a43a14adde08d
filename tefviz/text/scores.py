"""What a text scorer returns."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from tefviz.text.keep import BudgetRanking, CausalRanking


@dataclass(frozen=True)
class TokenScores:
    """Importance of each token, higher = more worth keeping.

    values: (L, n) one row per block for per-block scorers, (1, n) for one score per token,
        or (L, n, n) when each query scores the keys it sees (query i's row covers keys <= i).
    """

    values: torch.Tensor

    @cached_property
    def causal_ranking(self) -> CausalRanking:
        """The per-query ranking of the keys, sorted once and reused by every threshold (the
        "evict" keep rule); kept on this object, so reuse the object across thresholds."""
        return CausalRanking(self.values)

    def budget_ranking(self, priority: torch.Tensor) -> BudgetRanking:
        """The per-query ranking under a fixed budget with these `priority` keys (n, n) or
        (L, n, n), sorted once per priority set and kept on this object (the fixed-fraction rule)."""
        key = (tuple(priority.shape), hash(priority.cpu().numpy().tobytes()))
        if key not in self._budget_rankings:
            self._budget_rankings[key] = BudgetRanking(self.values, priority)
        return self._budget_rankings[key]

    @cached_property
    def _budget_rankings(self) -> dict:
        return {}

    @property
    def per_block(self) -> bool:
        return self.values.shape[0] > 1

    @property
    def per_query(self) -> bool:
        return self.values.dim() == 3

    def token_view(self, layer: int = 0) -> torch.Tensor:
        """One score per token for display: the block's row, or for per-query scores what
        the last query (which sees the whole text) gives each key."""
        v = self.values[min(layer, self.values.shape[0] - 1)]
        return v[-1] if self.per_query else v
