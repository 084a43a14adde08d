"""Text: per-token scores from a TEF (or a baseline), a live threshold, and what dropping costs.
Widgets and layout only: tefviz/text/view.py computes what is shown."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st

from tefviz.data.heldout import heldout_samples
from tefviz.models import LoadedLM
from tefviz.text import view
from tefviz.text.filtering import POLICY_MODES, DropPolicy
from tefviz.text.scorers import TokenScorer, get_scorer, tef_scorer, tef_variants
from tefviz.text.view import FilteredText, ScoredText
from tefviz.viz.text_figures import cumulative_share_figure, loss_change_figure, perplexity_vs_kept_figure
from ui import loaders
from ui.cache_keys import cache_keys
from ui.cache_keys import scorer_key as scorer_key_of
from ui.charts import PreparedHtml, chart, digest
from ui.compute import one_at_a_time
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, page_keys
from ui.text_input import text_source

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("text")  # session keys text.<name>; the URL has <name>


# a resource, not data: every session and rerun gets the same object, so the key ranking the
# "evict" rule builds on its first threshold (a sort of up to L x n x n scores) is reused by every
# later one, and a rerun does not unpickle up to 100 MB of per-query scores; read-only
@st.cache_resource(max_entries=8, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time
def cached_scores(lm: LoadedLM, scorer: TokenScorer, text: str) -> ScoredText:
    """The scoring pass, once per (model, scorer, text): the threshold never re-runs it."""
    with progress_bar(f"Scoring tokens with {scorer.label}…") as report:
        return view.score_text_tokens(lm, scorer, text, progress=report)


@st.cache_data(max_entries=256, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time
def cached_filter(lm: LoadedLM, scorer: TokenScorer, text: str, t: float, policy: DropPolicy) -> FilteredText:
    return view.filter_text(lm, scorer, cached_scores(lm, scorer, text), t, policy)


@st.cache_resource(max_entries=256, show_spinner=False)
def token_view(
    view_key: str, _scored: ScoredText, _filtered: FilteredText, _kept: np.ndarray, layer: int
) -> dict:
    """The per-token table and both strips, once per view for every session (read-only)."""
    strips = view.token_strips(_scored, _filtered, _kept, layer)
    return {
        "rows": strips.rows,
        "change": strips.change,
        "shares": PreparedHtml(strips.shares),
        "worse": PreparedHtml(strips.worse),
    }


class Choice(NamedTuple):
    picked: str  # the model picked (a TEF scorer may run on its own fine-tuned copy)
    model_tefs: list  # the TEF checkpoints trained on it
    scorer_key: str  # "tef:<checkpoint>" or a baseline's name
    text: str
    t: float
    rule: str = "share"  # what t means under the evict mode (view.KEEP_RULES)


def choices(tefs: list, bases: dict) -> Choice:
    """Model, scorer, dropping rule, text and threshold, each kept in the URL (the typed text is not)."""
    samples = {s["id"]: s["text"] for s in heldout_samples()}
    # A link from before the model picker names a TEF scorer only: open the model it runs on.
    linked = str(st.query_params.get("scorer", ""))
    left, right = st.columns([1, 2])
    with left:
        picked = loaders.lm_picker(
            key("model"),
            default=bases.get(linked[4:]) if linked.startswith("tef:") else None,
            help="TEF scorers are offered for the model they were trained on.",
        )
        if picked is None:
            st.stop()
        model_tefs = [c for c in tefs if bases[c.name] == picked]
        labels = view.scorer_labels(model_tefs)
        scorer_key = bound(
            st.selectbox,
            key("scorer"),
            next(iter(labels)),
            "Scorer",
            list(labels),
            choices=list(labels),
            format_func=labels.get,
            help=f"TEF heads trained on {picked} (from checkpoints/), or a baseline scorer.",
        )
        if scorer_key.startswith("tef:"):  # the causal TEF evicts; the paper's zeroes whole tokens
            card = next((c.card or {} for c in model_tefs if f"tef:{c.name}" == scorer_key), {})
            evicts = card.get("variant") == "causal"
        else:
            mode = bound(
                st.radio,
                key("mode"),
                "evict",
                "Dropping means",
                list(POLICY_MODES),
                choices=list(POLICY_MODES),
                horizontal=True,
                help="; ".join(f"{k}: {v}" for k, v in view.MODES_HELP.items()),
            )
            bound(st.checkbox, key("sink"), True, "Always keep the first token (attention sink)")
            if mode == "evict":
                bound(
                    st.number_input,
                    key("recent"),
                    0,
                    "Always keep this many recent tokens",
                    0,
                    64,
                    lo=0,
                    hi=64,
                )
            evicts = mode == "evict"
        rule = "share"
        if evicts:
            rule = bound(
                st.radio,
                key("rule"),
                "share",
                "Each token keeps",
                list(view.KEEP_RULES),
                choices=list(view.KEEP_RULES),
                format_func=view.KEEP_RULES.get,
                horizontal=True,
                help=view.KEEP_RULES_HELP,
            )
        _, text = text_source(
            samples,
            key("sample"),
            key("own"),
            right=right,
            height=150,
            placeholder=view.PLACEHOLDER,
            help="Held-out samples (never trained on), or your own text.",
        )
    with right:
        t = bound(
            st.slider,
            key("t"),
            0.9,
            "Threshold t (cumulative share kept)" if rule == "share" else "Kept fraction t (of each prefix)",
            0.0,
            1.0,
            lo=0.0,
            hi=1.0,
            step=0.01,
            help="1.0 keeps every token; lower keeps fewer. "
            + ("The top token is always kept." if rule == "share" else "A token always keeps itself."),
        )
    return Choice(picked, model_tefs, scorer_key, text, t, rule)


def scorer_and_policy(choice: Choice) -> tuple[str, TokenScorer, DropPolicy]:
    """(the model to run, the scorer, the dropping rule): TEF heads bring their own."""
    if choice.scorer_key.startswith("tef:"):
        tef_name = choice.scorer_key.split(":", 1)[1]
        loaded = guarded(f"Loading TEF heads {tef_name!r}", loaders.get_tef, tef_name)
        heads, model_name, _ = loaded or st.stop()
        scorer = tef_scorer(heads)
        policy = DropPolicy(
            scorer.default_mode,
            sink=heads.config.sink,
            recent=heads.config.recent,
            budget=choice.rule == "budget" and scorer.default_mode == "evict",
        )
        st.caption(view.tef_caption(model_name, tef_name, policy.mode))
        return model_name, scorer, policy
    scorer, mode = get_scorer(choice.scorer_key), st.session_state[key("mode")]
    policy = DropPolicy(
        mode,
        sink=st.session_state[key("sink")],
        recent=int(st.session_state.get(key("recent"), 0)) if mode == "evict" else 0,
        budget=choice.rule == "budget" and mode == "evict",
    )
    st.caption(f"{scorer.description} Dropping: {view.MODES_HELP[policy.mode]}.")
    return choice.picked, scorer, policy


def headline(scored: ScoredText, filtered: FilteredText, kept: np.ndarray) -> None:
    for col, m in zip(st.columns(4), view.headline_metrics(scored, filtered, kept), strict=True):
        col.metric(**m.kwargs())
    if len(scored.ids) < 2:
        st.info("One token only: nothing to predict and nothing to drop. Add more text.")


def token_strips(
    choice: Choice, scored: ScoredText, filtered: FilteredText, kept: np.ndarray, layer: int, view_key: str
) -> None:
    """The strip by share, the cumulative curve, the loss change per token and the strip by it."""
    tokens = token_view(view_key, scored, filtered, kept, layer)
    at = "t" if choice.rule == "share" else "kept fraction"
    st.markdown(
        f"**Tokens by share** (block {layer}; struck-through grey = dropped at {at} = {choice.t:.2f})"
    )
    st.html(tokens["shares"])
    st.caption("Colour: the token's rank by share (dark red = highest, white = lowest); hover for the share.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Sorted shares and the cumulative curve**")
        chart(
            cumulative_share_figure,
            scored.pieces,
            scored.shares(layer),
            kept,
            choice.t,
            view=view_key,
            key=key("cumulative"),
        )
    with right:
        st.markdown("**Which predictions got worse** (loss change per token)")
        chart(
            loss_change_figure, scored.pieces, tokens["change"], list(kept), view=view_key, key=key("change")
        )
    st.html(tokens["worse"])
    st.caption(
        "Red = that token became harder to predict (up to 4+ bits worse); white = unchanged or easier."
    )
    download_buttons(
        tokens["rows"],
        f"text-tokens-{choice.scorer_key.replace(':', '_')}-t{choice.t:.2f}",
        key=key("tokens-export"),
    )


def heldout_section(
    choice: Choice, scored: ScoredText, filtered: FilteredText, policy: DropPolicy, view_key: str
) -> None:
    """Perplexity against tokens kept on held-out text, from the TEF cards, with this text as a star."""
    st.subheader("Perplexity vs tokens kept, on held-out text")
    rules = view.heldout_rules(choice.model_tefs)
    rule = choice.rule if choice.rule in rules else rules[0]  # the live rule's comparison, when there is one
    if len(rules) > 1:
        rule = bound(
            st.radio,
            key("compare"),
            rule,
            "Compare methods",
            rules,
            choices=rules,
            horizontal=True,
            format_func=lambda r: view.HELDOUT_RULES[r][1],
            help=view.KEEP_RULES_HELP,
        )
    tables, table_source = view.heldout_tables(choice.model_tefs, rule)
    domain = None
    if len(tables) > 1:
        domain = bound(
            st.radio,
            key("domain"),
            view.default_domain(tables),
            "Held-out text",
            sorted(tables),
            choices=sorted(tables),
            horizontal=True,
            help="Each shipped held-out sample, a different domain, never trained on.",
        )
    domain = domain or next(iter(tables), None)
    table = tables.get(domain) if domain else None
    if table is None:
        st.info(
            f"No held-out table for {choice.picked} in its TEF cards yet: `python -m tefviz eval text "
            f"--lm checkpoints/{choice.picked} --tef checkpoints/<tef> --write-cards` writes one."
        )
        return
    is_tef, scorer_key = choice.scorer_key.startswith("tef:"), choice.scorer_key
    current = scorer_key.split(":", 1)[1] if is_tef else f"{scorer_key} ({policy.mode})"
    # the table comes from a card, which `eval text --write-cards` can rewrite under a running server
    chart(
        perplexity_vs_kept_figure,
        table,
        current,
        choice.t if rule == "share" else None,  # the page's t is a share, not one of the kept fractions
        view.heldout_point(scored, filtered),
        key=key("table"),
        view=f"{view_key}|{rule}|{domain}|{table_source[domain]}",
    )
    st.caption(view.heldout_caption(table, literal(table.get("name") or domain or "austen")))
    download_buttons(view.heldout_rows(table), "heldout-table", key=key("table-export"))


st.title("Text: which tokens matter")
st.caption(view.INTRO)
if not loaders.usable_lm_names():
    st.warning(loaders.NO_LM)
    st.stop()
tefs = [c for c in loaders.usable_tef_checkpoints() if (c.card or {}).get("variant") in tef_variants()]
for broken in loaders.unusable_tef_checkpoints():
    st.warning(
        literal(f"TEF checkpoint {broken.name} is unusable and not offered: {broken.error}"),
        icon=":material/error:",
    )
choice = choices(tefs, {c.name: loaders.tef_base(c) for c in tefs})
model_name, scorer, policy = scorer_and_policy(choice)
lm = guarded(f"Loading {model_name!r}", loaders.get_lm, model_name) or st.stop()  # stop: raises
if not choice.text.strip():
    st.info("The text is empty: type or paste some text, or pick a sample.")
    st.stop()
scored = guarded("Scoring the text", cached_scores, lm, scorer, choice.text) or st.stop()
filtered = guarded("Dropping tokens", cached_filter, lm, scorer, choice.text, float(choice.t), policy)
filtered = filtered or st.stop()
if note := view.truncation_note(scored, lm.context_length):
    st.warning(note)
layers = scored.n_layers_scored
layer = (
    0
    if layers < 2
    else bound(
        st.select_slider,
        key("layer"),
        0,
        "Block",
        list(range(layers)),
        lo=0,
        hi=layers - 1,
        help="This scorer scores every block separately; the strip shows one.",
    )
)
kept = filtered.kept_last[min(layer, filtered.kept_last.shape[0] - 1)]
# everything the figures below depend on: they are built once per view for every session
view_key = f"{lm.cache_key}|{scorer_key_of(scorer)}|{digest(choice.text)}|{float(choice.t)}|{policy}|{layer}"
headline(scored, filtered, kept)
token_strips(choice, scored, filtered, kept, layer, view_key)
heldout_section(choice, scored, filtered, policy, view_key)
