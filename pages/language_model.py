"""Language model: how surprised the model is by each token of a text, and what it expected."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from tefviz.analysis import MAX_CHARS, MAX_TOKENS, TextAnalysis, analyse_text
from tefviz.data.heldout import heldout_samples
from tefviz.models import LoadedLM
from tefviz.viz.lm_figures import surprisal_figure
from tefviz.viz.tokens import token_strip_html
from ui.cache_keys import cache_keys
from ui.compute import one_at_a_time
from ui.errors import guarded
from ui.export import download_buttons
from ui.loaders import ARCHITECTURES_TEXT, NO_LM, SHARED_LM, get_lm, usable_lm_names
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, page_keys
from ui.text_input import text_source

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("language_model")  # session keys language_model.<name>; the URL has <name>

st.title("Language model")
st.caption(
    "Each token coloured by its surprisal: −log₂ p(token | everything before it). "
    "Dark tokens are the ones the model did not see coming. Hover a token for its id and the "
    "model's top guesses."
)

HUB = "Hugging Face name (needs network)"
names = usable_lm_names()
if not names:
    st.warning(f"{NO_LM} You can still load a model from the Hugging Face hub when online.")
samples = {s["id"]: s["text"] for s in heldout_samples()}

# --- choices (all kept in the URL) -----------------------------------------------------
left, right = st.columns([1, 2])
with left:
    model_choices = [*names, HUB]
    choice = bound(
        st.selectbox,
        key("model"),
        names[0] if names else HUB,
        "Model",
        model_choices,
        choices=model_choices,
        shared=SHARED_LM,  # the model picked here follows the user to the other model pages
        help=f"Language-model checkpoints in checkpoints/ ({ARCHITECTURES_TEXT}), or any causal "
        "LM on the hub.",
    )
    hub_name = ""
    if choice == HUB:  # nothing is asked of the hub before a name is typed
        hub_name = bound(
            st.text_input,
            key("hub"),
            "",
            "Hub model name",
            help="e.g. gpt2, EleutherAI/pythia-70m, Qwen/Qwen2.5-0.5B",
        ).strip()
    sample, text = text_source(
        samples,
        key("sample"),
        key("own"),
        right=right,
        height=180,
        help="Held-out samples (never trained on), or paste your own.",
        placeholder=f"Paste any text. Long text is cut at {MAX_CHARS:,} characters / {MAX_TOKENS:,} tokens.",
    )

source = hub_name if choice == HUB else choice
if choice == HUB and not hub_name:
    st.info("Type a hub model name, e.g. `gpt2`.")
    st.stop()


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_analysis(lm: LoadedLM, text: str) -> TextAnalysis:
    """Scores keyed by (model, weights version, text): moving a slider never rescores."""
    with progress_bar("Scoring tokens…") as report:
        return analyse_text(lm, text, progress=report)


kind = "hub" if choice == HUB else "checkpoint"
lm = guarded(f"Loading {source!r}", get_lm, source, kind)
if lm is None:
    st.stop()
if not text.strip():
    st.info("The text is empty: type or paste some text, or pick a sample.")
    st.stop()
analysis = guarded("Scoring the text", cached_analysis, lm, text)
if analysis is None:
    st.stop()

# --- results --------------------------------------------------------------------------
if analysis.truncated_chars or analysis.truncated_tokens:
    cut = [
        f"{n:,} {unit}"
        for n, unit in ((analysis.truncated_chars, "characters"), (analysis.truncated_tokens, "tokens"))
        if n
    ]
    st.warning(
        f"The text was cut to fit: the last {' and '.join(cut)} were not scored "
        f"(limits: {MAX_CHARS:,} characters, {MAX_TOKENS:,} tokens)."
    )
if analysis.windows:
    st.info(
        f"Longer than the model's context ({lm.context_length} tokens): scored in overlapping "
        "windows, so every token still sees at least half a context of history."
    )
n_scored = len(analysis.scored)
c = st.columns(4)
c[0].metric("Tokens", f"{len(analysis.ids):,}")
c[1].metric("Perplexity", f"{analysis.perplexity:,.2f}" if n_scored else "n/a")
c[2].metric("Bits per byte", f"{analysis.bits_per_byte:.3f}" if n_scored else "n/a")
bits = [x / math.log(2) for x in analysis.nll]
c[3].metric(
    "Mean surprisal",
    f"{sum(b for b in bits if not math.isnan(b)) / n_scored:.2f} bits" if n_scored else "n/a",
)
if not n_scored:
    st.info("One token only: nothing precedes it, so there is nothing to predict. Add more text.")

titles = []
for i, (p, t, b, g) in enumerate(zip(analysis.pieces, analysis.ids, bits, analysis.topk, strict=True)):
    guess = ", ".join(f"{s!r} {q:.0%}" for _, s, q in g[:3])
    titles.append(
        f"#{i} {p!r} (id {t})\n"
        + (
            "first token: not predicted"
            if math.isnan(b)
            else f"surprisal {b:.2f} bits\nmodel expected: {guess}"
        )
    )
shown = min(len(analysis.ids), 1500)
st.markdown("**Tokens by surprisal**" + (f" (first {shown:,} shown)" if shown < len(analysis.ids) else ""))
st.html(token_strip_html(analysis.pieces[:shown], bits[:shown], titles[:shown], vmax=12.0))
st.caption(
    "Colour scale: white = 0 bits (certain) to red = 12+ bits. Struck-through grey is used on "
    "later pages for dropped tokens."
)

st.plotly_chart(surprisal_figure(analysis.pieces, bits), width="stretch", key=key("surprisal"))
rows = analysis.rows()
download_buttons(rows, f"surprisal-{source.replace('/', '_')}", key=key("surprisal-export"))


@st.fragment
def expectation_view(analysis: TextAnalysis, bits: list[float]) -> None:
    """Moving this slider reruns only this section, not the strip and chart above."""
    st.subheader("What did the model expect?")
    n = len(analysis.ids)
    if n < 2:
        st.info("Needs at least two tokens.")
        return
    if n == 2:  # a slider needs two positions to choose from
        pos = 1
        st.caption("Token position 1 (the only predicted token).")
    else:
        pos = bound(st.slider, key("pos"), 1, "Token position", 1, n - 1, lo=1, hi=n - 1)
    context = "".join(analysis.pieces[max(0, pos - 12) : pos])
    st.text(f"context:  …{context!r}\nactual:   {analysis.pieces[pos]!r}  ({bits[pos]:.2f} bits)")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "rank": r + 1,
                    "guess": repr(s),
                    "probability": round(q, 4),
                    "is actual": i == analysis.ids[pos],
                }
                for r, (i, s, q) in enumerate(analysis.topk[pos])
            ]
        ),
        hide_index=True,
        width="content",
    )


expectation_view(analysis, bits)
