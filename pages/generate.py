"""Generation: a prompt continued with a KV cache that really shrinks, beside dense generation.
Widgets and layout only: tefviz/generate/view.py computes what is shown."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from tefviz.generate import view
from tefviz.generate.evicted import SINKS
from tefviz.models import LoadedLM
from tefviz.text.tef import TEFHeads
from tefviz.viz.generate_figures import cache_size_figure, eviction_steps, generation_strip_html, kl_figure
from ui.cache_keys import cache_keys
from ui.charts import chart, digest
from ui.compute import one_at_a_time
from ui.errors import guarded
from ui.export import download_buttons
from ui.loaders import get_tef, lm_or_stop, lm_picker, tef_base, usable_tef_checkpoints
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, keep, page_keys
from ui.text_input import text_box

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("generate")  # session keys generate.<name>; the URL has <name>


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_generation(
    lm: LoadedLM,
    ids: tuple[int, ...],
    policy: str,
    heads: TEFHeads | None,
    budget: int | None,
    t: float | None,
    new_tokens: int,
    seed: int | None,
) -> dict:
    """Both generations, once per (model and weights, prompt, policy and heads, limit, tokens, seed):
    reruns and moves of the view widgets never generate again."""
    with progress_bar(f"Generating {new_tokens} tokens with and without eviction…") as report:
        return view.generate_both(lm, ids, policy, heads, budget, t, new_tokens, seed, progress=report)


class Choice(NamedTuple):
    policy_key: str  # "tef:<checkpoint>" or a baseline's name
    budget: int | None  # the cache limit: entries per layer, or
    t: float | None  # a keep share
    new_tokens: int
    seed: int | None  # None: greedy
    text: str

    def settings(self) -> tuple:
        """(budget, t, new_tokens, seed): what a generation depends on besides the prompt and policy."""
        return self.budget, self.t, self.new_tokens, self.seed


def choices(left, right, policies: dict[str, str], context: int) -> Choice:
    """Policy, limit, new tokens, decoding and prompt, each kept in the URL (the typed prompt is not)."""
    samples = view.prompt_samples()
    with left:
        policy_key = bound(
            st.selectbox,
            key("policy"),
            next(iter(policies)),
            "Eviction policy",
            list(policies),
            choices=list(policies),
            format_func=policies.get,
            help=view.POLICY_HELP,
        )
        limit = bound(
            st.radio,
            key("limit"),
            "budget",
            "Cache limited by",
            list(view.LIMITS),
            choices=list(view.LIMITS),
            format_func=view.LIMITS.get,
            horizontal=True,
            help=view.LIMIT_HELP,
        )
        if limit == "budget":
            lo, hi, default = view.budget_range(context)
            bound(
                st.slider,
                key("budget"),
                default,
                "Cache budget (entries per layer)",
                lo,
                hi,
                lo=lo,
                hi=hi,
                help=f"At least {SINKS + 2}: the attention sinks and the newest token.",
            )
        else:
            bound(
                st.slider,
                key("share"),
                0.5,
                "Keep share t",
                0.05,
                1.0,
                lo=0.05,
                hi=1.0,
                step=0.05,
                help=view.SHARE_HELP,
            )
        hi, default = view.new_tokens_range(context)
        new_tokens = bound(
            st.slider,
            key("new_tokens"),
            default,
            "New tokens",
            8,
            hi,
            lo=8,
            hi=hi,
            help=f"Prompt and new tokens share the model's context of {context:,} tokens: a "
            "longer prompt is cut to its last tokens.",
        )
        decoding = bound(
            st.radio,
            key("decoding"),
            "greedy",
            "Decoding",
            ["greedy", "sampled"],
            choices=["greedy", "sampled"],
            horizontal=True,
            help="Sampled: at temperature 1 with the seed below; both runs use the same draws.",
        )
        if decoding == "sampled":
            bound(st.number_input, key("seed"), 0, "Seed", 0, 2**31 - 1, lo=0, hi=2**31 - 1)
    with right:
        prompt_choices = [*samples, view.OWN]
        source = bound(
            st.selectbox,
            key("prompt"),
            next(iter(samples)),
            "Prompt",
            prompt_choices,
            choices=prompt_choices,
            format_func=lambda k: view.prompt_label(samples, k),
        )
        if source == view.OWN:
            text = text_box("Your prompt", key("own"), 120, view.PROMPT_PLACEHOLDER)
        else:
            text = samples[source][1]
            st.text(text)
    keep(key("own"))
    state = st.session_state
    return Choice(
        policy_key,
        int(state[key("budget")]) if limit == "budget" else None,
        float(state[key("share")]) if limit == "share" else None,
        new_tokens,
        int(state[key("seed")]) if decoding == "sampled" else None,
        text,
    )


def headline(g, n0: int) -> None:
    for col, m in zip(st.columns(4), view.headline_metrics(g, n0), strict=True):
        col.metric(**m.kwargs())


def texts(result: dict, prompt: view.Prompt, request: tuple, label: str) -> None:
    """The evicted and the dense text side by side, at a step and for a layer's cache the reader picks."""
    g, ids, pieces = result["gen"], prompt.ids, prompt.pieces
    n0, n = len(ids), len(g.ids)
    vcols = st.columns([1, 2])
    with vcols[0]:
        options = [*range(len(g.kept)), -1]
        layer = bound(
            st.selectbox,
            key("cache_layer"),
            0,
            "Struck through: evicted from",
            options,
            choices=options,
            format_func=view.layer_label,
            help="Each layer keeps its own cache: a token can be gone from one layer and still "
            "cached in another.",
        )
    with vcols[1]:
        if st.session_state.get(key("_step_for")) != request:  # a new generation opens at its last step
            st.session_state[key("_step_for")], st.session_state[key("step")] = request, n
        shown = (
            n
            if n < 2
            else st.slider(
                "Show the text after step",
                1,
                n,
                key=key("step"),
                help="The text as it grew: the cache's evictions up to that step.",
            )
        )
    evicted_at = eviction_steps([s.evicted for s in g.steps], None if layer < 0 else layer)
    gone = sum(1 for s in evicted_at.values() if s < shown)
    where = "every layer" if layer < 0 else f"layer {layer}"
    left, right = st.columns(2)
    with left:
        st.markdown(
            f"**Evicted cache** ({label}; {gone} of {n0 + shown} tokens evicted from {where} by step {shown})"
        )
        st.html(
            generation_strip_html(
                pieces,
                result["pieces"],
                ids,
                g.ids,
                shown,
                evicted_at,
                g.diverged_at,
                [s.kl_to_dense for s in g.steps],
            )
        )
    with right:
        first = max(0, n0 - view.SHOWN_CONTEXT)
        st.markdown(
            "**Dense cache**" + (f" (the prompt's last {view.SHOWN_CONTEXT} tokens shown)" if first else "")
        )
        st.html(
            generation_strip_html(
                pieces[first:],
                result["dense_pieces"],
                ids[first:],
                g.dense_ids,
                shown,
                None,
                g.diverged_at,
                None,
                first_position=first,
            )
        )
    st.caption(view.STRIP_CAPTION)


def per_step_charts(result: dict, n0: int, view_key: str, policy_key: str) -> None:
    """Cache size and KL per step, and the per-step rows."""
    g, steps = result["gen"], result["gen"].steps
    left, right = st.columns(2)
    with left:
        st.markdown("**Cache size per step**")
        chart(
            cache_size_figure,
            [s.cache_bytes for s in steps],
            g.dense_cache_bytes,
            [s.cache_entries for s in steps],
            view.dense_entries(g, n0),
            g.diverged_at,
            view=view_key,
            key=key("cache"),
        )
    with right:
        st.markdown("**KL(dense ‖ evicted) per step**")
        chart(
            kl_figure,
            [s.kl_to_dense for s in steps],
            result["pieces"],
            g.diverged_at,
            view=view_key,
            key=key("kl"),
        )
    download_buttons(
        view.step_rows(result, n0), f"generate-{policy_key.replace(':', '_')}", key=key("steps-export")
    )


st.title("Generation with an evicted KV cache")
st.caption(view.INTRO)
tefs = [c for c in usable_tef_checkpoints() if (c.card or {}).get("variant") == "causal"]
left, right = st.columns([1, 2])
with left:
    picked = lm_picker(
        key("model"), help="The causal TEF policy is offered for a model with causal TEF heads."
    )
lm = lm_or_stop(picked)
policies = view.policy_choices([c.name for c in tefs if tef_base(c) == picked])
choice = choices(left, right, policies, lm.context_length)
if not choice.text.strip():
    st.info("The prompt is empty: type a prompt, or pick a sample.")
    st.stop()
prompt = view.prompt_tokens(lm, choice.text, choice.new_tokens)  # cut to leave room for the new tokens
if note := prompt.cut_note(choice.new_tokens, lm.context_length):
    st.warning(note)
if not prompt.ids:
    st.info("The prompt has no tokens: type a prompt, or pick a sample.")
    st.stop()
heads, policy, policy_id = None, choice.policy_key, choice.policy_key
if choice.policy_key.startswith("tef:"):
    heads, _, _ = guarded(f"Loading TEF heads {policy[4:]!r}", get_tef, policy[4:]) or st.stop()
    policy, policy_id = "tef_causal", f"{choice.policy_key}@{heads.cache_key}"
request = (lm.cache_key, tuple(prompt.ids), policy_id, *choice.settings())
done = st.session_state.setdefault(key("_generated"), set())
with left:
    if st.button("Generate", key=key("generate"), type="primary", icon=":material/play_arrow:"):
        done.add(request)
if request not in done:
    st.info(
        "Press **Generate** to run both generations with these settings (a few seconds of work; "
        "results are kept, so coming back to these settings is instant)."
    )
    st.stop()
result = guarded("Generating", cached_generation, lm, tuple(prompt.ids), policy, heads, *choice.settings())
if result is None:
    done.discard(request)
    st.stop()
headline(result["gen"], len(prompt.ids))
texts(result, prompt, request, policies[choice.policy_key])
per_step_charts(result, len(prompt.ids), digest(repr(request)), choice.policy_key)
