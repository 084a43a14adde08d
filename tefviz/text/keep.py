"""The TEF keep rule: keep the highest-share tokens while their cumulative share stays within t.

As with singular values in an SVD, shares are read as each token's part of the "explained
variance": sort descending, keep while the running sum is <= t. The top token is always
kept, so the kept set is never empty; other tokens may be forced in (e.g. the first one,
which GPT-style models use as an attention sink).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import torch

from tefviz.errors import InputError


def rank_recent_first(scores: torch.Tensor) -> torch.Tensor:
    """Positions of the last dimension ordered by score, highest first; of two equal scores the
    more recent (later) position first. A stable sort of the reversed row gives exactly that."""
    n = scores.shape[-1]
    return n - 1 - torch.sort(scores.flip(-1), dim=-1, descending=True, stable=True).indices


def normalise_shares(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Non-negative scores over the last dimension -> shares summing to 1 over valid tokens."""
    s = scores.clamp_min(0).float()
    if valid is not None:
        s = s * valid
    total = s.sum(-1, keepdim=True)
    uniform = torch.ones_like(s) if valid is None else valid.float()
    # all-zero scores carry no preference: fall back to equal shares
    fallback = uniform / uniform.sum(-1, keepdim=True).clamp_min(1)
    return torch.where(total > 0, s / total.clamp_min(1e-30), fallback)


def cumulative_keep_mask(
    shares: torch.Tensor, t: float, always_keep: Iterable[int] = (), valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask over the last dimension of `shares` (summing to 1 over valid tokens).

    A token is kept when the shares of all tokens ranked at or above it sum to <= t
    (of two equal shares the more recent token ranks first, so the result is deterministic); the top token is
    always kept, as are the positions in `always_keep`.
    """
    if not 0.0 <= t <= 1.0:
        raise InputError(f"threshold t must lie in [0, 1], got {t}")
    s = shares.float()
    if valid is not None:
        s = torch.where(valid, s, torch.full_like(s, -1.0))  # invalid ones sort last
    order = rank_recent_first(s)
    sorted_shares = torch.gather(s.clamp_min(0), -1, order)
    cumulative = sorted_shares.cumsum(-1)
    # t = 1 keeps everything valid, whatever float rounding did to the running sum
    keep_sorted = cumulative <= t + 1e-6 if t < 1.0 else torch.ones_like(cumulative, dtype=torch.bool)
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    for i in always_keep:
        if -keep.shape[-1] <= i < keep.shape[-1]:
            keep[..., i] = True
    if valid is not None:
        keep &= valid
    return keep


def sorted_cumulative(shares: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, cumulative share) of a 1-D share vector sorted descending: the curve the
    threshold line cuts."""
    order = rank_recent_first(shares.float())
    return order, shares.float()[order].cumsum(0)


class CausalRanking:
    """The threshold-free half of `causal_keep_mask`, computed once per scores tensor.

    Each query's visible keys are ranked by score once (the sort is the expensive part: one
    per row of an (L, n, n) tensor); what a threshold move then needs is one comparison per
    (query, key) of the score mass ranked at or above the key with t times the row's total.
    """

    def __init__(self, scores: torch.Tensor) -> None:
        n = scores.shape[-1]
        s = scores.float().clamp_min(0)
        if s.dim() == 1 or s.shape[-2:] != (n, n):
            s = s[..., None, :].expand(*s.shape[:-1], n, n)
        self.n = n
        self.causal = torch.ones(n, n, dtype=torch.bool, device=s.device).tril()
        s = s.masked_fill(~self.causal, -1.0)  # keys a query cannot see sort last
        # a stable sort of the reversed row ranks the more recent of two equal scores first
        order = rank_recent_first(s)
        running = torch.gather(s, -1, order).clamp_min_(0).cumsum_(-1)
        self.total = running[..., -1:].clone()  # (..., n, 1) each query's visible mass
        # score mass ranked at or above each key, back in key order
        self.mass_at_or_above = torch.empty_like(running).scatter_(-1, order, running)
        self.top = order[..., :1].clone()  # (..., n, 1) each query's top key

    def mask(self, t: float, sink: bool = True, recent: int = 0) -> torch.Tensor:
        """(..., n, n) bool: the keys each query keeps at threshold t."""
        if not 0.0 <= t <= 1.0:
            raise InputError(f"threshold t must lie in [0, 1], got {t}")
        if recent < 0:
            raise InputError(f"the recent window must be >= 0, got {recent}")
        if t >= 1.0:
            return self.causal.expand(self.mass_at_or_above.shape).clone()
        keep = (self.mass_at_or_above <= t * self.total * (1 + 1e-6)) | (self.total <= 0)
        keep.scatter_(-1, self.top, True)  # each query's top key
        keep |= torch.eye(self.n, dtype=torch.bool, device=keep.device)
        if sink:
            keep[..., :, 0] = True
        if recent:
            q = torch.arange(self.n, device=keep.device)
            keep |= (q[:, None] - q[None, :]) <= recent
        return keep.logical_and_(self.causal)


def causal_keep_mask(scores: torch.Tensor, t: float, sink: bool = True, recent: int = 0) -> torch.Tensor:
    """Which keys each query keeps: scores (..., n) for all queries alike, or (..., n, n) per
    query (row i scores the keys as query i sees them) -> (..., n, n) boolean.

    Query i normalises the non-negative scores of the prefix it can see (keys 0..i) into
    shares and keeps the highest-share keys while their cumulative share is <= t, as
    `cumulative_keep_mask` does for a whole text. It needs nothing after i, so it works token
    by token during generation. Every query also keeps itself, the first token when `sink`
    (GPT-style models park attention there) and its `recent` predecessors. Of two equal
    scores the more recent key ranks first. For many thresholds on the same scores, build a
    `CausalRanking` once and call its `mask`.
    """
    if not 0.0 <= t <= 1.0:
        raise InputError(f"threshold t must lie in [0, 1], got {t}")
    return CausalRanking(scores).mask(t, sink=sink, recent=recent)


def kept_fractions(keep: torch.Tensor) -> torch.Tensor:
    """Per query, the fraction of its visible keys it keeps: (..., n, n) -> (..., n)."""
    n = keep.shape[-1]
    return keep.sum(-1).float() / torch.arange(1, n + 1, device=keep.device, dtype=torch.float)


@lru_cache(maxsize=8)
def always_kept(n: int, sink: bool, recent: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """(n, n) bool: the keys a query keeps whatever the scores: itself, the first token when
    `sink`, and its `recent` predecessors; visible keys only. Cached: read-only."""
    q = torch.arange(n, device=device)
    dist = q[:, None] - q[None, :]
    keep = (dist >= 0) & (dist <= recent)
    if sink:
        keep[:, 0] = True
    return keep


def budget_counts(n: int, fraction: float, device=None) -> torch.Tensor:
    """(n,) how many keys query i keeps under a fixed kept fraction: ceil(fraction * (i + 1)),
    at least 1 (itself). The cache-budget convention of kvpress's compression ratio, per query."""
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"the kept fraction must lie in [0, 1], got {fraction}")
    visible = torch.arange(1, n + 1, device=device, dtype=torch.float64)
    # a fraction that went through float32 (0.8 -> 0.80000001) must not buy one more key
    return torch.ceil(visible * round(float(fraction), 6) - 1e-9).long().clamp_min(1)


def budget_beyond(n: int, fraction: float, sink: bool, device=None) -> torch.Tensor:
    """(n,) each query's budget beyond itself and the sink: what H2O splits between its recent
    window and its heavy hitters (and budget TEF heads with `budget_recent` split alike)."""
    forced = always_kept(n, sink, 0, device).sum(-1)
    return (budget_counts(n, fraction, device) - forced).clamp_min(0)


def recent_window(n: int, sizes: torch.Tensor | int, device=None) -> torch.Tensor:
    """(..., n, n) bool: query i keeps itself and its `sizes[..., i]` predecessors (a number, or
    one per query)."""
    q = torch.arange(n, device=device)
    dist = q[:, None] - q[None, :]
    if isinstance(sizes, int):
        return (dist >= 0) & (dist <= sizes)
    return (dist >= 0) & (dist <= sizes.to(q.device)[..., :, None])


class BudgetRanking:
    """The fraction-free half of `budget_keep_mask`, computed once per (scores, priority keys).

    Query i keeps its `budget_counts(n, fraction)[i]` top-ranked keys, so one sort per row gives
    every kept fraction: a slider move is then one comparison (under 0.1 s instead of 0.8 for six layers
    of 2,048 per-query scores). Ranks are stored as int16 when they fit.
    """

    def __init__(self, scores: torch.Tensor, priority: torch.Tensor | None = None) -> None:
        n = scores.shape[-1]
        s = scores.float()
        if s.dim() == 1 or s.shape[-2:] != (n, n):
            s = s[..., None, :].expand(*s.shape[:-1], n, n)
        q = torch.arange(n, device=s.device)
        self.n = n
        self.causal = q[:, None] >= q[None, :]
        first = q[:, None] == q[None, :]
        if priority is not None:
            first = first | priority.to(s.device)
        # every priority key outranks every score (ties among them: the more recent first, so the
        # query itself leads); keys a query cannot see sort last
        s = torch.where(first, torch.full_like(s, float("inf")), s).masked_fill(~self.causal, float("-inf"))
        order = rank_recent_first(s)
        dtype = torch.int16 if n <= torch.iinfo(torch.int16).max else torch.int32
        self.rank = torch.empty(order.shape, dtype=dtype, device=s.device)
        self.rank.scatter_(-1, order, q.to(dtype).expand_as(order).contiguous())

    def mask(self, fraction: float) -> torch.Tensor:
        """(..., n, n) bool: the keys each query keeps at this kept fraction."""
        counts = budget_counts(self.n, fraction, self.rank.device)
        return (self.rank < counts[:, None]) & self.causal


def budget_keep_mask(
    scores: torch.Tensor, fraction: float, priority: torch.Tensor | None = None
) -> torch.Tensor:
    """Which keys each query keeps under a fixed budget: scores (..., n) for all queries alike or
    (..., n, n) per query -> (..., n, n) bool, query i keeping exactly `budget_counts(n,
    fraction)[i]` keys of its prefix, the highest-scoring ones.

    The rule a KV cache of fixed size follows, where `cumulative_keep_mask` keeps a share of the
    scores (so a peaked scorer keeps fewer keys at the same t than a flat one). Keys in `priority`
    ((n, n) or broadcastable; a method's sinks or window) rank above every scored key, and the query's
    own key above those; all of them count against the budget. Of two equal scores the more recent
    key ranks first, as in the share rule. For many fractions on the same scores, build a
    `BudgetRanking` once (`TokenScores.budget_ranking` keeps one).
    """
    return BudgetRanking(scores, priority).mask(fraction)
