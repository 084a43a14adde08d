"""Text: per-token scores from a TEF (or a baseline), a live threshold, and what dropping costs."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from tefviz.data.heldout import heldout_samples
from tefviz.models import LoadedLM
from tefviz.text.filtering import POLICY_MODES, DropPolicy
from tefviz.text.scorers import (
    SCORERS,
    TokenScorer,
    baseline_names,
    get_scorer,
    tef_scorer,
    tef_scorer_class,
    tef_variants,
)
from tefviz.text.view import (
    MAX_TEXT_CHARS,
    FilteredText,
    ScoredText,
    filter_text,
    score_text_tokens,
    token_rows,
)
from tefviz.viz.text_figures import (
    RATIO_CAP,
    cumulative_share_figure,
    loss_change_figure,
    perplexity_vs_kept_figure,
)
from tefviz.viz.tokens import token_strip_html
from ui.cache_keys import cache_keys
from ui.cache_keys import scorer_key as scorer_key_of
from ui.charts import PreparedHtml, chart, digest
from ui.compute import one_at_a_time
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.loaders import (
    NO_LM,
    get_lm,
    get_tef,
    lm_picker,
    tef_base,
    unusable_tef_checkpoints,
    usable_lm_names,
    usable_tef_checkpoints,
)
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound
from ui.text_input import text_source

through_app()  # a first visit straight to this page still gets app.py's navigation

st.title("Text: which tokens matter")
st.caption(
    "A token evaluation function (TEF) gives every token a share of the text's \"explained "
    "variance\". Tokens are kept, highest share first, while their cumulative share stays within "
    "the threshold t; the rest are dropped. Move t and watch which tokens go and what the model's "
    "perplexity pays for it."
)

MODES_HELP = {
    "evict": "dropped tokens leave the context of later tokens (each query decides over the prefix it "
             "sees, as during generation); every token still makes its own prediction in full",
    "skip": "dropped tokens (whole-text rule) pass every block unchanged and are hidden as keys",
    "zero": "as in the paper: dropped tokens' block inputs are zeroed and hidden as keys",
}
# the KV-cache baselines a researcher expects first, then the project's older ones (their `order`)
BASELINES = baseline_names()

names = usable_lm_names()
if not names:
    st.warning(NO_LM)
    st.stop()
tefs = [c for c in usable_tef_checkpoints() if (c.card or {}).get("variant") in tef_variants()]
bases = {c.name: tef_base(c) for c in tefs}
for broken in unusable_tef_checkpoints():
    st.warning(literal(f"TEF checkpoint {broken.name} is unusable and not offered: {broken.error}"),
               icon=":material/error:")
samples = {s["id"]: s["text"] for s in heldout_samples()}

# --- choices (kept in the URL) -----------------------------------------------------------
# A link from before the model picker names a TEF scorer only: open the model it runs on.
linked = str(st.query_params.get("scorer", ""))
left, right = st.columns([1, 2])
with left:
    picked = lm_picker(default=bases.get(linked[4:]) if linked.startswith("tef:") else None,
                       help="TEF scorers are offered for the model they were trained on.")
    if picked is None:
        st.stop()
    model_tefs = [c for c in tefs if bases[c.name] == picked]
    # TEF heads trained on the picked model, then the baselines (they work with any model)
    scorer_labels = {f"tef:{c.name}": f"{tef_scorer_class(c.card['variant']).label} · {c.name}"
                     for c in model_tefs}
    scorer_labels.update({name: SCORERS[name].label for name in BASELINES})
    scorer_key = bound(st.selectbox, "scorer", next(iter(scorer_labels)), "Scorer", list(scorer_labels),
                       choices=list(scorer_labels), format_func=scorer_labels.get,
                       help=f"TEF heads trained on {picked} (from checkpoints/), or a baseline scorer.")
    is_tef = scorer_key.startswith("tef:")
    model_name = None if is_tef else picked
    if not is_tef:
        mode = bound(st.radio, "mode", "evict", "Dropping means", list(POLICY_MODES),
                     choices=list(POLICY_MODES), horizontal=True,
                     help="; ".join(f"{k}: {v}" for k, v in MODES_HELP.items()))
        bound(st.checkbox, "sink", True, "Always keep the first token (attention sink)")
        if mode == "evict":
            bound(st.number_input, "recent", 0, "Always keep this many recent tokens", 0, 64, lo=0, hi=64)
    sample, text = text_source(samples, "text_own", right=right, height=150,
                               help="Held-out samples (never trained on), or your own text.",
                               placeholder=f"Paste any text; the first {MAX_TEXT_CHARS:,} characters, up "
                                           "to one context window of the model's tokens, are used.")
with right:
    t = bound(st.slider, "t", 0.9, "Threshold t (cumulative share kept)", 0.0, 1.0, lo=0.0, hi=1.0, step=0.01,
              help="1.0 keeps every token; lower keeps fewer. The top token is always kept.")

# --- the model and scorer -----------------------------------------------------------------
if is_tef:
    tef_name = scorer_key.split(":", 1)[1]
    loaded = guarded(f"Loading TEF heads {tef_name!r}", get_tef, tef_name)
    if loaded is None:
        st.stop()
    heads, model_name, _ = loaded
    scorer = tef_scorer(heads)
    policy = DropPolicy(scorer.default_mode, sink=heads.config.sink, recent=heads.config.recent)
    st.caption(f"Runs on `{model_name}`" + (" (the LM fine-tuned with these gates)"
                                           if model_name == tef_name else " (frozen)")
               + f". Dropping: {MODES_HELP[policy.mode]}.")
else:
    scorer = get_scorer(scorer_key)
    mode = st.session_state["mode"]
    policy = DropPolicy(mode, sink=st.session_state["sink"],
                        recent=int(st.session_state.get("recent", 0)) if mode == "evict" else 0)
    st.caption(f"{scorer.description} Dropping: {MODES_HELP[policy.mode]}.")
lm = guarded(f"Loading {model_name!r}", get_lm, model_name)
if lm is None:
    st.stop()
if not text.strip():
    st.info("The text is empty: type or paste some text, or pick a sample.")
    st.stop()
model_key = lm.cache_key
scorer_id = scorer_key_of(scorer)


# a resource, not data: every session and rerun gets the same object, so the key ranking the
# "evict" rule builds on its first threshold (a sort of up to L x n x n scores) is reused by every
# later one, and a rerun does not unpickle up to 100 MB of per-query scores; read-only
@st.cache_resource(max_entries=8, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time
def cached_scores(lm: LoadedLM, scorer: TokenScorer, text: str) -> ScoredText:
    """The scoring pass, once per (model, scorer, text): the threshold never re-runs it."""
    with progress_bar(f"Scoring tokens with {scorer.label}…") as report:
        return score_text_tokens(lm, scorer, text, progress=report)


@st.cache_data(max_entries=256, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time
def cached_filter(lm: LoadedLM, scorer: TokenScorer, text: str, t: float,
                  policy: DropPolicy) -> FilteredText:
    return filter_text(lm, scorer, cached_scores(lm, scorer, text), t, policy)


scored = guarded("Scoring the text", cached_scores, lm, scorer, text)
if scored is None:
    st.stop()
filtered = guarded("Dropping tokens", cached_filter, lm, scorer, text, float(t), policy)
if filtered is None:
    st.stop()

if scored.truncated_tokens or scored.truncated_chars:
    st.warning(f"The text is longer than one context window of {lm.context_length} tokens: only the "
               f"first {len(scored.ids):,} tokens are shown and scored "
               f"({scored.truncated_tokens:,} tokens cut).")

n = len(scored.ids)
layers = scored.n_layers_scored
if layers > 1:
    layer = bound(st.select_slider, "layer", 0, "Block", list(range(layers)), lo=0, hi=layers - 1,
                  help="This scorer scores every block separately; the strip shows one.")
else:
    layer = 0
kept = filtered.kept_last[min(layer, filtered.kept_last.shape[0] - 1)]
# everything the figures below depend on: they are built once per view for every session
view = f"{model_key}|{scorer_id}|{digest(text)}|{float(t)}|{policy}|{layer}"
shares = scored.shares(layer)

# --- headline numbers ---------------------------------------------------------------------
c = st.columns(4)
c[0].metric("Perplexity, all tokens", f"{scored.dense_perplexity:,.2f}" if n > 1 else "n/a")
ratio = filtered.perplexity / scored.dense_perplexity if n > 1 else float("nan")
c[1].metric("Perplexity, dropped at t", f"{filtered.perplexity:,.2f}" if n > 1 else "n/a",
            delta=f"{ratio:.2f}x" if n > 1 else None, delta_color="inverse")
c[2].metric("Tokens kept (last token's view)", f"{int(kept.sum())} of {n}",
            help="What the last token, which sees the whole text, keeps at this block.")
c[3].metric("Kept fraction", f"{filtered.kept_fraction:.1%}",
            help="Of all (query, key) pairs a causal model would compute, the share kept; for "
                 "skip/zero, the share of (block, token) pairs that run.")
if n < 2:
    st.info("One token only: nothing to predict and nothing to drop. Add more text.")

# --- the tokens -------------------------------------------------------------------------------
@st.cache_resource(max_entries=256, show_spinner=False)
def token_view(view: str, _scored: ScoredText, _filtered: FilteredText, _kept: np.ndarray,
               layer: int) -> dict:
    """The per-token table and both strips, once per view for every session (read-only)."""
    rows = token_rows(_scored, _filtered, layer)
    n = len(rows)
    titles = [f"#{r['position']} {r['token']!r} (id {r['id']})\nshare {r['share']:.4f}, rank {r['rank']} of "
              f"{n}\n" + ("kept" if r["kept"] else "dropped")
              + ("" if r["loss_change_bits"] is None else f"\nloss change {r['loss_change_bits']:+.2f} bits")
              for r in rows]
    shown = n  # the whole scored text: at most one context window of the model (2,048 tokens)
    dimmed = list(~_kept[:shown])
    # colour by rank, not raw share: trained scorers can be nearly flat, and their order is what counts
    heat = [1.0 - (r["rank"] - 1) / max(n - 1, 1) for r in rows]
    change = [r["loss_change_bits"] for r in rows]
    worse = [0.0 if v is None else max(v, 0.0) for v in change]
    return {"rows": rows, "change": change,
            "shares": PreparedHtml(token_strip_html(_scored.pieces[:shown], heat[:shown], titles[:shown],
                                                    vmax=1.0, dimmed=dimmed)),
            "worse": PreparedHtml(token_strip_html(_scored.pieces[:shown], worse[:shown], titles[:shown],
                                                   vmax=4.0, dimmed=dimmed))}


tokens = token_view(view, scored, filtered, kept, layer)
rows = tokens["rows"]
st.markdown(f"**Tokens by share** (block {layer}; struck-through grey = dropped at t = {t:.2f})")
st.html(tokens["shares"])
st.caption("Colour: the token's rank by share (dark red = highest, white = lowest); hover for the share.")

left, right = st.columns(2)
with left:
    st.markdown("**Sorted shares and the cumulative curve**")
    chart(cumulative_share_figure, scored.pieces, shares, kept, t, view=view, key="cumulative")
with right:
    st.markdown("**Which predictions got worse** (loss change per token)")
    chart(loss_change_figure, scored.pieces, tokens["change"], list(kept), view=view, key="change")
st.html(tokens["worse"])
st.caption("Red = that token became harder to predict (up to 4+ bits worse); white = unchanged or easier.")
download_buttons(rows, f"text-tokens-{scorer_key.replace(':', '_')}-t{t:.2f}", key="tokens-export")

# --- the held-out table ---------------------------------------------------------------------
st.subheader("Perplexity vs tokens kept, on held-out text")
# the cards hold one table per evaluated domain (`eval text --sample all --write-cards`), else Austen's
tables: dict[str, dict] = {}
table_source: dict[str, str] = {}  # domain -> the card's checkpoint and fingerprint (the figure's key)
for c in model_tefs:
    metrics = (c.card or {}).get("metrics", {})
    for name, tab in (metrics.get("heldout_tables") or {}).items():
        tables.setdefault(name, tab)
        table_source.setdefault(name, f"{c.name}:{c.fingerprint}")
    if metrics.get("heldout_table"):
        tables.setdefault("austen", metrics["heldout_table"])
        table_source.setdefault("austen", f"{c.name}:{c.fingerprint}")
domain = None
if len(tables) > 1:
    domain = bound(st.radio, "domain", "austen" if "austen" in tables else sorted(tables)[0], "Held-out text",
                   sorted(tables), choices=sorted(tables), horizontal=True,
                   help="Each shipped held-out sample, a different domain, never trained on.")
domain = domain or next(iter(tables), None)
table = tables.get(domain) if domain else None
if table is None:
    st.info(f"No held-out table for {picked} in its TEF cards yet: `python -m tefviz eval text --lm "
            f"checkpoints/{picked} --tef checkpoints/<tef> --write-cards` writes one.")
else:
    current = scorer_key.split(":", 1)[1] if is_tef else f"{scorer_key} ({policy.mode})"
    finite = n > 1 and math.isfinite(filtered.perplexity)
    point = (filtered.kept_fraction, ratio) if finite and math.isfinite(ratio) else None
    # the table comes from a card, which `eval text --write-cards` can rewrite under a running server
    chart(perplexity_vs_kept_figure, table, current, t, point, key="table",
          view=f"{view}|{domain}|{table_source[domain]}")
    st.caption(f"Dense reference perplexity {table['reference']['perplexity']:.2f} over "
               f"{table['reference']['windows']} windows of {table['reference']['block']} held-out tokens "
               f"({literal(table.get('name') or domain or 'austen')}). Perplexity is a ratio to dense "
               f"on a linear scale up to {RATIO_CAP:g}x; a method that runs away beyond it is drawn dotted, "
               "clipped at the top, and its legend says how far it went. The star is this text at the "
               "current t (ratio to its own dense perplexity); the ring, the held-out point nearest t.")
    flat = [{"scorer": label, "mode": g["mode"], **r}
            for label, g in table["scorers"].items() for r in g["rows"]]
    download_buttons(flat, "heldout-table", key="table-export")
