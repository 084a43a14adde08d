"""Drop tokens by a scorer's scores at threshold t, and measure what it costs in loss.

Three meanings of "drop" (`DropPolicy.mode`):
- "evict": the token leaves the context of later tokens (hidden as a key), decided per
  query over the prefix it sees (`causal_keep_mask`); each token's own prediction is made in
  full, as the newest token is during generation. Works token by token, with a KV cache.
- "skip": the whole-text rule picks the tokens; they pass each block unchanged and are
  hidden as keys (Mixture-of-Depths style; their own predictions degrade).
- "zero": as in the paper's GPT2-TEF: block inputs of dropped tokens multiplied by 0, and
  hidden as keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tefviz.errors import InputError
from tefviz.lm import masked_forward, model_parts
from tefviz.text.keep import always_kept, cumulative_keep_mask, kept_fractions, normalise_shares
from tefviz.text.scores import TokenScores

DropModeName = Literal["evict", "skip", "zero"]
POLICY_MODES: tuple[str, ...] = ("evict", "skip", "zero")


@dataclass(frozen=True)
class DropPolicy:
    mode: DropModeName = "evict"
    sink: bool = True  # always keep the first token
    recent: int = 0  # "evict" only: always keep this many predecessors of each query
    # "evict" only: t is each query's kept fraction (a fixed cache budget, `budget_keep_mask`)
    # instead of a share of its scores (`causal_keep_mask`)
    budget: bool = False

    def __post_init__(self) -> None:
        if self.mode not in POLICY_MODES:
            raise InputError(f"unknown drop mode {self.mode!r}; choose one of {POLICY_MODES}")
        if self.budget and self.mode != "evict":
            raise InputError(f"a fixed kept fraction is a rule of the evict mode, not of {self.mode!r}")
        if self.recent < 0:
            raise InputError(f"the recent window must be >= 0, got {self.recent}")


@dataclass(frozen=True)
class KeepMasks:
    keys: torch.Tensor  # (L, n, n) bool: query i sees key j at block l
    tokens: torch.Tensor | None  # (L, n) bool for "skip"/"zero": the token runs block l

    @property
    def kept_fraction(self) -> float:
        """Share of (query, visible key) pairs kept, averaged over blocks and queries; for
        "skip"/"zero", the share of (block, token) pairs that run."""
        if self.tokens is not None:
            return float(self.tokens.float().mean())
        return float(kept_fractions(self.keys).mean())

    def kept_by_last_query(self) -> torch.Tensor:
        """(L, n) bool: which tokens the last query (which sees the whole text) keeps."""
        return self.tokens if self.tokens is not None else self.keys[:, -1, :]


def keep_masks(
    scores: TokenScores, t: float, policy: DropPolicy, n_layer: int, always: torch.Tensor | None = None
) -> KeepMasks:
    """The kept keys (and tokens) at t under `policy`. `always`: "evict" only, keys a method keeps
    whatever its scores ((n, n) or (L, n, n): StreamingLLM's sinks); under a fixed budget they rank
    first and count against it, under the share rule they are added."""
    v = scores.values
    n = v.shape[-1]
    if policy.mode == "evict":
        if policy.budget:
            priority = always_kept(n, policy.sink, policy.recent)
            priority = priority if always is None else priority | always.to(priority.device)
            keys = scores.budget_ranking(priority).mask(t)
        else:
            keys = scores.causal_ranking.mask(t, sink=policy.sink, recent=policy.recent)
            if always is not None:
                keys = (keys | always.to(keys.device)) & torch.ones(
                    n, n, dtype=torch.bool, device=keys.device
                ).tril()
        return KeepMasks(keys.expand(n_layer, n, n) if keys.shape[0] == 1 else keys, None)
    rows = v[:, -1, :] if scores.per_query else v
    tokens = cumulative_keep_mask(normalise_shares(rows), t, always_keep=(0,) if policy.sink else ())
    tokens = tokens.expand(n_layer, n) if tokens.shape[0] == 1 else tokens
    keys = tokens[:, None, :] & torch.ones(n, n, dtype=torch.bool).tril()
    return KeepMasks(keys, tokens)


def token_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """NLL (nats) of tokens 1..n-1 from logits (n, V) or (B, n, V)."""
    logp = torch.log_softmax(logits[..., :-1, :].float(), dim=-1)
    return -logp.gather(-1, ids[..., 1:, None].to(logp.device))[..., 0]


@dataclass(frozen=True)
class FilteredPass:
    nll: torch.Tensor  # (n-1,) nats, per predicted token
    masks: KeepMasks | None  # None for the dense pass

    @property
    def loss(self) -> float:
        return float(self.nll.mean()) if self.nll.numel() else float("nan")

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.nll.numel() else float("nan")


@torch.no_grad()
def dense_pass(model: nn.Module, ids: torch.Tensor) -> FilteredPass:
    ids = ids.reshape(-1)
    return FilteredPass(token_nll(masked_forward(model, ids[None]).logits[0], ids).cpu(), None)


@torch.no_grad()
def filtered_pass(
    model: nn.Module, ids: torch.Tensor, scores: TokenScores, t: float, policy: DropPolicy
) -> FilteredPass:
    """The text's per-token loss with tokens dropped at threshold t."""
    ids = ids.reshape(-1)
    masks = keep_masks(scores, t, policy, model_parts(model).n_layer)
    device = ids.device
    if policy.mode == "evict":
        out = masked_forward(model, ids[None], key_keep=masks.keys.to(device))
    else:
        out = masked_forward(model, ids[None], token_keep=masks.tokens.to(device), mode=policy.mode)
    return FilteredPass(token_nll(out.logits[0], ids).cpu(), masks)
