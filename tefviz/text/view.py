"""What the Text page shows, computed without Streamlit: one scoring pass per (model, scorer,
text), then one filtered pass per threshold.

The page caches `score_text_tokens` (the expensive, threshold-free part) and calls
`filter_text` as the slider moves: that is a single forward pass of the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from tefviz.analysis import token_pieces
from tefviz.device import device_of
from tefviz.errors import InputError
from tefviz.models import LoadedLM
from tefviz.text.filtering import DropPolicy, dense_pass
from tefviz.text.keep import normalise_shares
from tefviz.text.scorers.base import TokenScorer
from tefviz.text.scores import TokenScores

MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class ScoredText:
    pieces: list[str]
    ids: list[int]
    scores: np.ndarray  # TokenScores.values as numpy
    dense_nll: np.ndarray  # (n-1,) nats: the unfiltered model on this text
    truncated_tokens: int  # tokens cut to fit one context window
    truncated_chars: int

    @cached_property
    def token_scores(self) -> TokenScores:
        """The scores as a tensor, made once: its key ranking is then reused by every threshold."""
        return TokenScores(torch.tensor(self.scores))  # a copy: the array is read-only

    @property
    def n_layers_scored(self) -> int:
        return self.scores.shape[0]

    def shares(self, layer: int) -> np.ndarray:
        """Each token's share of the whole text's score at `layer` (what the strip shows)."""
        return normalise_shares(self.token_scores.token_view(layer)).numpy()

    @property
    def dense_perplexity(self) -> float:
        return math.exp(float(self.dense_nll.mean())) if self.dense_nll.size else float("nan")


@dataclass(frozen=True)
class FilteredText:
    nll: np.ndarray  # (n-1,) nats with tokens dropped
    kept_last: np.ndarray  # (L, n) bool: tokens the last query keeps, per block
    kept_fraction: float  # of (query, key) pairs, or (block, token) pairs for skip/zero

    @property
    def perplexity(self) -> float:
        return math.exp(float(self.nll.mean())) if self.nll.size else float("nan")


def encode_for_view(lm: LoadedLM, text: str) -> tuple[list[str], list[int], int, int]:
    """(pieces, ids, tokens cut, characters cut): at most one context window of tokens."""
    if not text or not text.strip():
        raise InputError("the text is empty: type or paste some text, or pick a sample")
    cut_chars = max(0, len(text) - MAX_TEXT_CHARS)
    text = text[:MAX_TEXT_CHARS]
    enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    if not ids:
        raise InputError("the text has no tokens")
    limit = lm.context_length
    return token_pieces(text, offsets[:limit]), ids[:limit], max(0, len(ids) - limit), cut_chars


@torch.no_grad()
def score_text_tokens(lm: LoadedLM, scorer: TokenScorer, text: str, model=None, progress=None) -> ScoredText:
    """The threshold-free part: scores and the dense per-token loss. `model` overrides lm.model
    (the paper TEF runs on its own fine-tuned copy)."""
    model = model if model is not None else lm.model
    pieces, ids, cut_tokens, cut_chars = encode_for_view(lm, text)
    if scorer.max_tokens is not None and len(ids) > scorer.max_tokens:
        raise InputError(f"{scorer.label} scores at most {scorer.max_tokens} tokens (one forward pass "
                         f"per token); this text has {len(ids)}. Pick a shorter text or another scorer.")
    device = device_of(model)
    x = torch.tensor(ids, device=device)
    scores = scorer.score(model, x, progress=progress)
    dense = dense_pass(model, x)
    values = scores.values.float().cpu().numpy()
    nll = dense.nll.numpy()
    for a in (values, nll):  # the page shares one ScoredText between sessions
        a.setflags(write=False)
    return ScoredText(pieces, ids, values, nll, cut_tokens, cut_chars)


@torch.no_grad()
def filter_text(lm: LoadedLM, scorer: TokenScorer, scored: ScoredText, t: float, policy: DropPolicy,
                model=None) -> FilteredText:
    model = model if model is not None else lm.model
    device = device_of(model)
    fp = scorer.filtered(model, torch.tensor(scored.ids, device=device), scored.token_scores, t, policy)
    return FilteredText(fp.nll.numpy(), fp.masks.kept_by_last_query().numpy(), fp.masks.kept_fraction)


def token_rows(scored: ScoredText, filtered: FilteredText, layer: int) -> list[dict]:
    """The per-token table: score, rank, kept or dropped, loss dense vs filtered."""
    shares = scored.shares(layer)
    order = np.argsort(-shares, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(1, len(order) + 1)
    kept = filtered.kept_last[min(layer, filtered.kept_last.shape[0] - 1)]
    ln2 = math.log(2)
    rows = []
    for i, (piece, tid) in enumerate(zip(scored.pieces, scored.ids, strict=True)):
        dense = None if i == 0 else float(scored.dense_nll[i - 1]) / ln2
        filt = None if i == 0 else float(filtered.nll[i - 1]) / ln2
        rows.append({
            "position": i, "token": piece, "id": int(tid), "share": round(float(shares[i]), 6),
            "rank": int(rank[i]), "kept": bool(kept[i]),
            "loss_dense_bits": None if dense is None else round(dense, 4),
            "loss_filtered_bits": None if filt is None else round(filt, 4),
            "loss_change_bits": None if dense is None else round(filt - dense, 4),
        })
    return rows
