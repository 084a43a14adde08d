"""H2O, the heavy-hitter oracle: accumulated attention plus a recent window.

Zhang, Sheng, Zhou, Chen, Zheng, Cai, Song, Tian, Ré, Barrett, Wang, Chen (2023), "H2O: Heavy-Hitter
Oracle for Efficient Generative Inference of Large Language Models", arXiv:2306.14048. A key's
score is the attention it has received so far, summed over the queries that saw it (H2O's
accumulated attention; kvpress's `ObservedAttentionPress`, a prefill variant, averages it over the
queries that saw each key instead and has no recent window: scripts/check_kvpress.py finds the
two scores rank keys identically once the mean is turned back into a sum). The cache keeps
the highest-scoring keys (the "heavy hitters") and the most recent ones, half the budget each by
the paper's default.

Here, per layer (scores averaged over heads), query i scores key j <= i by the attention j
received from queries 0..i of the dense pass: nothing after i. Under the "evict" rule the budget
of query i is what the cumulative-share rule keeps of those scores at t (the keys `attention
(evict)` keeps, besides itself and the sink); H2O spends `recent_ratio` (half) of it on the most
recent predecessors and the rest on the heaviest hitters among the older keys. So H2O and
`attention` keep the same number of keys at every t, and differ by the recent window. The other
drop modes use the whole text's accumulated attention as `attention` does.
"""

from __future__ import annotations

import torch

from tefviz.text.filtering import filtered_pass
from tefviz.text.keep import always_kept, budget_beyond, causal_keep_mask, rank_recent_first, recent_window
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.scorers.kv_common import causal, evict_pass, head_mean_attention


def h2o_keys(
    acc: torch.Tensor,
    t: float,
    sink: bool = True,
    recent_ratio: float = 0.5,
    extra_recent: int = 0,
    fixed_budget: bool = False,
) -> torch.Tensor:
    """(L, n, n) bool keys from accumulated attention (L, n, n) at threshold t, or with
    `fixed_budget` at kept fraction t (query i keeps `budget_counts(n, t)[i]` keys in all)."""
    n = acc.shape[-1]
    forced = always_kept(n, sink)
    if fixed_budget:  # the budget beyond itself and the sink, one per query
        budget = budget_beyond(n, t, sink).expand(acc.shape[0], n)
    else:  # the heavy-hitter budget at t
        budget = (causal_keep_mask(acc, t, sink=sink) & ~forced).sum(-1)  # (L, n)
    n_recent = torch.ceil(budget * recent_ratio - 1e-9).long()
    n_heavy = budget - n_recent
    recent = recent_window(n, n_recent)
    eligible = causal(n) & ~forced & ~recent
    s = acc.float().masked_fill(~eligible, -1.0)
    # rank the eligible keys, of two equal scores the more recent first (as the keep rule does)
    order = rank_recent_first(s)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n).expand_as(order).contiguous())
    heavy = eligible & (rank < n_heavy[..., None])
    keys = forced | recent | heavy
    if extra_recent:
        keys |= recent_window(n, extra_recent)
    return keys & causal(n)


@register
class H2OScorer(TokenScorer):
    name = "h2o"
    order = 20
    label = "H2O (heavy hitters + recent window)"
    description = (
        "Per block, the attention each token has received so far (heavy hitters), with half of "
        "each query's budget spent on the most recent tokens (Zhang et al. 2023; kvpress's "
        "ObservedAttentionPress averages instead of summing and keeps no recent window)."
    )

    def __init__(self, recent_ratio: float = 0.5) -> None:
        self.recent_ratio = recent_ratio

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        acc = head_mean_attention(model, ids).cumsum(1)  # row i: mass from queries 0..i
        if progress:
            progress(1.0)
        return TokenScores(acc)

    @torch.no_grad()
    def filtered(self, model, ids, scores, t, policy):
        if policy.mode != "evict":
            return filtered_pass(model, ids, scores, t, policy)
        keys = h2o_keys(
            scores.values.cpu(), t, policy.sink, self.recent_ratio, policy.recent, fixed_budget=policy.budget
        )
        return evict_pass(model, ids, keys)
