"""SnapKV: scores pooled from the attention of an observation window of recent queries.

Li, Huang, Yang, Venkitesh, Locatelli, Ye, Cai, Lewis, Chen (2024), "SnapKV: LLM Knows What You
are Looking for Before Generation", arXiv:2404.14469. The last `window` queries of the prompt
(the observation window) vote for the earlier keys with their attention, summed over the window;
the votes are pooled over neighbouring keys (kernel 7 with max-pooling, or average-pooling) so
that whole phrases survive; the top keys and the window itself are kept. NVIDIA kvpress's
`SnapKVPress` averages the window's attention, average-pools with kernel 5 over a window of 64,
averages over query heads sharing a key head and keeps the window by giving it the top score.

Here, per layer (heads averaged), query i's observation window is queries max(0, i-w+1)..i, so
only tokens up to i vote: key j older than the window scores the pooled sum of the window's
attention to it in the dense pass (keys inside the window are pooled over as zeros, as kvpress
pads). Under the "evict" rule query i keeps its window (itself and its w-1 predecessors) and the
older keys holding a share t of the pooled votes. Defaults: w = 32, kernel 7, max-pooling.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from tefviz.errors import InputError
from tefviz.text.filtering import filtered_pass
from tefviz.text.keep import recent_window
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.scorers.kv_common import causal, head_mean_attention


def snapkv_scores(attn: torch.Tensor, window: int, kernel: int, pooling: str) -> torch.Tensor:
    """(L, n, n) head-mean attention -> (L, n, n) pooled observation-window votes."""
    layers, n, _ = attn.shape
    votes = attn.float().cumsum(1)  # row i: attention from queries 0..i
    if window < n:
        votes[:, window:] -= votes[:, :-window].clone()  # now from queries i-w+1..i
    outside = causal(n) & ~recent_window(n, window - 1)  # keys older than each query's window
    votes = votes.masked_fill(~outside, 0.0)
    flat = votes.reshape(layers * n, 1, n)
    if pooling == "max":
        pooled = F.max_pool1d(flat, kernel, stride=1, padding=kernel // 2)
    else:
        pooled = F.avg_pool1d(flat, kernel, stride=1, padding=kernel // 2)
    return pooled.reshape(layers, n, n).masked_fill(~outside, 0.0)


@register
class SnapKVScorer(TokenScorer):
    name = "snapkv"
    order = 40
    label = "SnapKV (observation-window attention, pooled)"
    description = (
        "Per block, the attention the last 32 queries pay to each older token, max-pooled over "
        "7 neighbours; the 32-token window is always kept (Li et al. 2024; kvpress and the authors' "
        "code average-pool over 5, kvpress with a window of 64)."
    )

    def __init__(self, window: int = 32, kernel: int = 7, pooling: str = "max") -> None:
        if window < 1 or kernel < 1 or kernel % 2 == 0 or pooling not in ("max", "avg"):
            raise InputError("SnapKV needs window >= 1, an odd kernel and pooling 'max' or 'avg'")
        self.window, self.kernel, self.pooling = window, kernel, pooling

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        votes = snapkv_scores(head_mean_attention(model, ids), self.window, self.kernel, self.pooling)
        if progress:
            progress(1.0)
        return TokenScores(votes)

    @torch.no_grad()
    def filtered(self, model, ids, scores, t, policy):
        if policy.mode == "evict":  # the observation window is always kept
            policy = dataclasses.replace(policy, recent=max(policy.recent, self.window - 1))
        return filtered_pass(model, ids, scores, t, policy)
