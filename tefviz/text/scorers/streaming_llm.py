"""StreamingLLM: attention sinks plus a window of the most recent tokens.

Xiao, Tian, Chen, Han, Lewis (2023), "Efficient Streaming Language Models with Attention Sinks",
arXiv:2309.17453. The cache holds the first few tokens (4 in the paper and in NVIDIA kvpress's
`StreamingLLMPress`), which models use as attention sinks, and a sliding window of recent tokens.

Here: every token scores the same, so under the "evict" rule query i keeps the most recent keys
of its prefix that make up a share t of it (of equal scores the more recent ranks first), and the
first `n_sink` keys are always kept. Unticking the sink option leaves the plain sliding window
(the paper's "window attention" baseline). Nothing depends on the tokens themselves, so it is
causal trivially. `uniform` with the sink option is the same rule with one sink token.
"""

from __future__ import annotations

import torch

from tefviz.text.filtering import filtered_pass
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.scorers.kv_common import evict_with


@register
class StreamingLLMScorer(TokenScorer):
    name = "streaming_llm"
    order = 10
    label = "StreamingLLM (sinks + recent window)"
    description = (
        "The first 4 tokens (attention sinks) and a window of the most recent tokens, a share t "
        "of each query's prefix (Xiao et al. 2023)."
    )

    def __init__(self, n_sink: int = 4) -> None:
        self.n_sink = n_sink

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        if progress:
            progress(1.0)
        return TokenScores(torch.ones(1, ids.shape[-1]))

    @torch.no_grad()
    def filtered(self, model, ids, scores, t, policy):
        if policy.mode != "evict":
            return filtered_pass(model, ids, scores, t, policy)
        ids = ids.reshape(-1)
        always = torch.zeros(ids.numel(), ids.numel(), dtype=torch.bool)
        if policy.sink:
            always[:, : self.n_sink] = True
        return evict_with(model, ids, scores, t, policy, always)
