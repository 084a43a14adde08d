"""What the Text page shows, computed without Streamlit: one scoring pass per (model, scorer,
text), then one filtered pass per threshold, and what the page draws from them (headline numbers,
token strips, the held-out table from the TEF cards).

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
from tefviz.checkpoints import CheckpointInfo
from tefviz.device import device_of
from tefviz.errors import InputError
from tefviz.headline import Metric
from tefviz.models import LoadedLM
from tefviz.text.filtering import DropPolicy, dense_pass
from tefviz.text.keep import normalise_shares
from tefviz.text.scorers import SCORERS, baseline_names, tef_scorer_class
from tefviz.text.scorers.base import TokenScorer
from tefviz.text.scores import TokenScores
from tefviz.viz.text_figures import RATIO_CAP
from tefviz.viz.tokens import token_strip_html

MAX_TEXT_CHARS = 20_000
INTRO = (
    "A token evaluation function (TEF) gives every token a share of the text's \"explained "
    'variance". Tokens are kept, highest share first, while their cumulative share stays within '
    "the threshold t; the rest are dropped. Move t and watch which tokens go and what the model's "
    "perplexity pays for it."
)
MODES_HELP = {
    "evict": "dropped tokens leave the context of later tokens (each query decides over the prefix it "
    "sees, as during generation); every token still makes its own prediction in full",
    "skip": "dropped tokens (whole-text rule) pass every block unchanged and are hidden as keys",
    "zero": "as in the paper: dropped tokens' block inputs are zeroed and hidden as keys",
}
# what the slider's number means under the "evict" mode (`DropPolicy.budget`)
KEEP_RULES = {"share": "a share t of its scores", "budget": "a fixed fraction of its prefix (cache budget)"}
KEEP_RULES_HELP = (
    "Share: each token keeps the keys holding a share t of its scores (the TEF paper's rule; a peaked "
    "scorer keeps fewer keys than a flat one at the same t). Fixed fraction: each token keeps the same "
    "number of keys under every method, its top ones by score, as a KV cache of fixed size does "
    "(kvpress's compression ratio)."
)
PLACEHOLDER = (
    f"Paste any text; the first {MAX_TEXT_CHARS:,} characters, up to one context window of the "
    "model's tokens, are used."
)


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
        raise InputError(
            f"{scorer.label} scores at most {scorer.max_tokens} tokens (one forward pass "
            f"per token); this text has {len(ids)}. Pick a shorter text or another scorer."
        )
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
def filter_text(
    lm: LoadedLM, scorer: TokenScorer, scored: ScoredText, t: float, policy: DropPolicy, model=None
) -> FilteredText:
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
        rows.append(
            {
                "position": i,
                "token": piece,
                "id": int(tid),
                "share": round(float(shares[i]), 6),
                "rank": int(rank[i]),
                "kept": bool(kept[i]),
                "loss_dense_bits": None if dense is None else round(dense, 4),
                "loss_filtered_bits": None if filt is None else round(filt, 4),
                "loss_change_bits": None if dense is None else round(filt - dense, 4),
            }
        )
    return rows


def scorer_labels(model_tefs: list[CheckpointInfo]) -> dict[str, str]:
    """The scorer picker's choices: TEF heads trained on the picked model ("tef:<checkpoint>"), then
    the baselines (they work with any model; KV-cache baselines first, by their `order`)."""
    labels = {f"tef:{c.name}": f"{tef_scorer_class(c.card['variant']).label} · {c.name}" for c in model_tefs}
    labels.update({name: SCORERS[name].label for name in baseline_names()})
    return labels


def tef_caption(model_name: str, tef_name: str, mode: str) -> str:
    """Which model TEF heads run on, and what dropping means for them."""
    return (
        f"Runs on `{model_name}`"
        + (" (the LM fine-tuned with these gates)" if model_name == tef_name else " (frozen)")
        + f". Dropping: {MODES_HELP[mode]}."
    )


def truncation_note(scored: ScoredText, context_length: int) -> str | None:
    if not (scored.truncated_tokens or scored.truncated_chars):
        return None
    return (
        f"The text is longer than one context window of {context_length} tokens: only the first "
        f"{len(scored.ids):,} tokens are shown and scored ({scored.truncated_tokens:,} tokens cut)."
    )


def perplexity_ratio(scored: ScoredText, filtered: FilteredText) -> float:
    """Perplexity with tokens dropped over the dense one (nan for a single token)."""
    return filtered.perplexity / scored.dense_perplexity if len(scored.ids) > 1 else float("nan")


def headline_metrics(scored: ScoredText, filtered: FilteredText, kept: np.ndarray) -> list[Metric]:
    """Perplexity dense and dropped, tokens kept in the last token's view, the kept fraction."""
    n, ratio = len(scored.ids), perplexity_ratio(scored, filtered)
    return [
        Metric("Perplexity, all tokens", f"{scored.dense_perplexity:,.2f}" if n > 1 else "n/a"),
        Metric(
            "Perplexity, dropped at t",
            f"{filtered.perplexity:,.2f}" if n > 1 else "n/a",
            delta=f"{ratio:.2f}x" if n > 1 else None,
            color="inverse",
        ),
        Metric(
            "Tokens kept (last token's view)",
            f"{int(kept.sum())} of {n}",
            help="What the last token, which sees the whole text, keeps at this block.",
        ),
        Metric(
            "Kept fraction",
            f"{filtered.kept_fraction:.1%}",
            help="Of all (query, key) pairs a causal model would compute, the share kept; for "
            "skip/zero, the share of (block, token) pairs that run.",
        ),
    ]


@dataclass(frozen=True)
class TokenStrips:
    """The per-token table and the two strips (HTML, already escaped) of one view."""

    rows: list[dict]
    change: list[float | None]  # loss change per token, bits (None for the first)
    shares: str  # coloured by rank of share
    worse: str  # coloured by how much harder each token became to predict


def token_strips(scored: ScoredText, filtered: FilteredText, kept: np.ndarray, layer: int) -> TokenStrips:
    """The whole scored text (at most one context window) as strips; dropped tokens dimmed."""
    rows = token_rows(scored, filtered, layer)
    n = len(rows)
    titles = [
        f"#{r['position']} {r['token']!r} (id {r['id']})\nshare {r['share']:.4f}, rank {r['rank']} of "
        f"{n}\n"
        + ("kept" if r["kept"] else "dropped")
        + ("" if r["loss_change_bits"] is None else f"\nloss change {r['loss_change_bits']:+.2f} bits")
        for r in rows
    ]
    dimmed = list(~kept[:n])
    # colour by rank, not raw share: trained scorers can be nearly flat, and their order is what counts
    heat = [1.0 - (r["rank"] - 1) / max(n - 1, 1) for r in rows]
    change = [r["loss_change_bits"] for r in rows]
    worse = [0.0 if v is None else max(v, 0.0) for v in change]
    return TokenStrips(
        rows,
        change,
        token_strip_html(scored.pieces[:n], heat, titles, vmax=1.0, dimmed=dimmed),
        token_strip_html(scored.pieces[:n], worse, titles, vmax=4.0, dimmed=dimmed),
    )


# how the held-out tables compare methods: the card key `eval text --write-cards` fills, and the label
HELDOUT_RULES = {
    "share": ("heldout_tables", "at the same t (each method's share rule)"),
    "budget": ("heldout_budget_tables", "at the same kept fraction (a cache budget, `--budget`)"),
}


def heldout_rules(model_tefs: list[CheckpointInfo]) -> list[str]:
    """The comparisons the TEF cards hold held-out tables for, share rule first."""
    found = [
        rule
        for rule, (field, _) in HELDOUT_RULES.items()
        if any((c.card or {}).get("metrics", {}).get(field) for c in model_tefs)
    ]
    return found or ["share"]


def heldout_tables(
    model_tefs: list[CheckpointInfo], rule: str = "share"
) -> tuple[dict[str, dict], dict[str, str]]:
    """(domain -> held-out table, domain -> the card's checkpoint and fingerprint) from the TEF cards:
    one table per evaluated domain (`eval text --sample all --write-cards`, with `--budget` for the
    "budget" rule), else Austen's."""
    tables: dict[str, dict] = {}
    source: dict[str, str] = {}
    field = HELDOUT_RULES[rule][0]
    for c in model_tefs:
        metrics = (c.card or {}).get("metrics", {})
        for name, tab in (metrics.get(field) or {}).items():
            tables.setdefault(name, tab)
            source.setdefault(name, f"{c.name}:{c.fingerprint}")
        if rule == "share" and metrics.get("heldout_table"):
            tables.setdefault("austen", metrics["heldout_table"])
            source.setdefault("austen", f"{c.name}:{c.fingerprint}")
    return tables, source


def default_domain(tables: dict[str, dict]) -> str:
    return "austen" if "austen" in tables else sorted(tables)[0]


def heldout_point(scored: ScoredText, filtered: FilteredText) -> tuple[float, float] | None:
    """This text at the current t on the held-out figure: (kept fraction, perplexity ratio), if finite."""
    ratio = perplexity_ratio(scored, filtered)
    finite = len(scored.ids) > 1 and math.isfinite(filtered.perplexity)
    return (filtered.kept_fraction, ratio) if finite and math.isfinite(ratio) else None


def heldout_caption(table: dict, name: str) -> str:
    """What the held-out figure shows; `name` (the table's, as markdown) says which held-out text."""
    ref = table["reference"]
    return (
        f"Dense reference perplexity {ref['perplexity']:.2f} over {ref['windows']} windows of "
        f"{ref['block']} held-out tokens ({name}). Perplexity is a ratio to dense on a linear scale up "
        f"to {RATIO_CAP:g}x; a method that runs away beyond it is drawn dotted, clipped at the top, and "
        "its legend says how far it went. The star is this text at the current t (ratio to its own "
        "dense perplexity)"
        + (
            ". Every method keeps the same fraction of each query's prefix here (its top keys by its own "
            "scores): the lines are compared at equal cache sizes."
            if table.get("rule") == "budget"
            else "; the ring, the held-out point nearest t."
        )
    )


def heldout_rows(table: dict) -> list[dict]:
    """The held-out table flat: one row per scorer and setting."""
    return [
        {"scorer": label, "mode": g["mode"], **r} for label, g in table["scorers"].items() for r in g["rows"]
    ]
