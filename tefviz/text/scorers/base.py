"""The interface every text scorer shares: ids in, non-negative importance per token out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class TokenScores:
    """Importance of each token, higher = more worth keeping.

    values: (L, n) one row per block for per-block scorers, (1, n) for one score per token,
        or (L, n, n) when each query scores the keys it sees (query i's row covers keys <= i).
    """

    values: torch.Tensor

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


class TokenScorer:
    """A way to score tokens. Subclasses set the class fields and implement `score`."""

    name: ClassVar[str]  # registry key, also used in URLs and the CLI
    label: ClassVar[str]  # shown in the app
    description: ClassVar[str]  # one sentence for the app and the README
    max_tokens: ClassVar[int | None] = None  # longest text it can score (None: the context)

    @torch.no_grad()
    def score(
        self, model: nn.Module, ids: torch.Tensor, progress: Callable[[float], None] | None = None
    ) -> TokenScores:
        raise NotImplementedError
