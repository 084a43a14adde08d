"""The interface every text scorer shares: ids in, non-negative importance per token out."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from tefviz.text.scores import TokenScores


class TokenScorer:
    """A way to score tokens. Subclasses set the class fields and implement `score`."""

    name: ClassVar[str]  # registry key, also used in URLs and the CLI
    label: ClassVar[str]  # shown in the app
    description: ClassVar[str]  # one sentence for the app and the README
    max_tokens: ClassVar[int | None] = None  # longest text it can score (None: the context)
    order: ClassVar[int] = 100  # display order in pickers and tables (lower first)
    baseline: ClassVar[bool] = True  # needs no trained heads: offered for any model, in every table
    tef_variant: ClassVar[str | None] = None  # the TEF heads' variant it runs ("paper", "causal")
    default_mode: ClassVar[str] = "evict"  # the drop mode it is evaluated under by default
    benchmarked: ClassVar[bool] = False  # `bench text` times it beside the dense forward

    @torch.no_grad()
    def score(
        self, model: nn.Module, ids: torch.Tensor, progress: Callable[[float], None] | None = None
    ) -> TokenScores:
        raise NotImplementedError

    def filtered(self, model: nn.Module, ids: torch.Tensor, scores: TokenScores, t: float, policy):
        """The text's loss with tokens dropped at threshold t. Static scorers drop by `scores`
        under `policy`; scorers that decide inside the pass (TEF) override this."""
        from tefviz.text.filtering import filtered_pass

        return filtered_pass(model, ids, scores, t, policy)
