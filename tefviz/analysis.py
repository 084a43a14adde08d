"""Per-token analysis of a text under a causal LM: what each token cost and what was expected."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tefviz.errors import InputError
from tefviz.metrics import predicted_bytes, token_bytes, token_predictions
from tefviz.models import LoadedLM

MAX_CHARS = 20_000  # longer input is truncated, with a notice
MAX_TOKENS = 4_096  # CPU budget: ~8 context windows of 512


@dataclass(frozen=True)
class TextAnalysis:
    pieces: list[str]  # the text span of each token ("" for a byte-continuation token)
    ids: list[int]
    nll: list[float]  # nats; NaN for the first token (nothing predicts it)
    topk: list[list[tuple[int, str, float]]]  # the model's top guesses (id, text, p) per token
    covered_bytes: int  # UTF-8 bytes of the predicted tokens, each byte once (metrics.token_bytes)
    truncated_chars: int  # how many characters were cut off the input
    truncated_tokens: int
    windows: bool  # longer than one context: scored with overlapping windows

    @property
    def scored(self) -> list[float]:
        return [x for x in self.nll if not math.isnan(x)]

    @property
    def perplexity(self) -> float:
        s = self.scored
        return math.exp(sum(s) / len(s)) if s else float("nan")

    @property
    def bits_per_byte(self) -> float:
        s = self.scored
        return sum(s) / math.log(2) / self.covered_bytes if s and self.covered_bytes else float("nan")

    def rows(self) -> list[dict]:
        """The per-token table, for display and export."""
        return [
            {
                "position": i,
                "token": p,
                "id": t,
                "surprisal_bits": None if math.isnan(x) else round(x / math.log(2), 4),
                "top_guess": g[0][1] if g else None,
                "top_guess_prob": round(g[0][2], 4) if g else None,
            }
            for i, (p, t, x, g) in enumerate(zip(self.pieces, self.ids, self.nll, self.topk, strict=True))
        ]


def token_pieces(text: str, offsets: list[tuple[int, int]]) -> list[str]:
    """Each token's span of the text, contiguous from the previous token's end (so the pieces
    cover the text even where a tokenizer trims whitespace from its offsets); tokens inside one
    multi-byte character get ''."""
    pieces, last = [], 0
    for _start, end in offsets:
        pieces.append(text[last:end] if end > last else "")
        last = max(last, end)
    return pieces


def analyse_text(
    lm: LoadedLM, text: str, topk: int = 5, progress: Callable[[float], None] | None = None
) -> TextAnalysis:
    """Score every token of `text`; raise InputError for text with nothing to score."""
    if not text or not text.strip():
        raise InputError("the text is empty: type or paste some text, or pick a sample")
    cut_chars = max(0, len(text) - MAX_CHARS)
    text = text[:MAX_CHARS]
    enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    cut_tokens = max(0, len(ids) - MAX_TOKENS)
    ids, offsets = ids[:MAX_TOKENS], offsets[:MAX_TOKENS]
    block = lm.context_length
    preds = token_predictions(
        lm.model, torch.tensor(ids), block, dtype=lm.dtype, topk=topk, progress=progress
    )
    nll = [float("nan"), *preds.nll.tolist()]
    guesses: list[list[tuple[int, str, float]]] = [[]]
    for row_i, row_p in zip(preds.topk_ids.tolist(), preds.topk_probs.tolist(), strict=True):
        guesses.append([(i, lm.tokenizer.decode([i]), p) for i, p in zip(row_i, row_p, strict=True)])
    return TextAnalysis(
        pieces=token_pieces(text, offsets),
        ids=list(ids),
        nll=nll,
        topk=guesses,
        covered_bytes=predicted_bytes(token_bytes(lm.tokenizer, ids, text, offsets)),
        truncated_chars=cut_chars,
        truncated_tokens=cut_tokens,
        windows=len(ids) > block,
    )
