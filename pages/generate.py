"""Generation: a prompt continued with a KV cache that really shrinks, beside dense generation."""

from __future__ import annotations

import math

import streamlit as st

from tefviz.analysis import token_pieces
from tefviz.data.heldout import list_samples, sample_text
from tefviz.generate import evicted as core
from tefviz.models import LoadedLM
from tefviz.text.tef import TEFHeads
from tefviz.viz.generate_figures import (
    cache_size_figure,
    eviction_steps,
    generated_pieces,
    generation_strip_html,
    kl_figure,
)
from ui.cache_keys import cache_keys
from ui.charts import chart, digest
from ui.compute import one_at_a_time
from ui.errors import guarded
from ui.export import download_buttons
from ui.loaders import get_tef, lm_or_stop, lm_picker, tef_base, usable_tef_checkpoints
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, keep
from ui.text_input import text_box

through_app()  # a first visit straight to this page still gets app.py's navigation

st.title("Generation with an evicted KV cache")
st.caption(
    "The model continues a prompt while its key/value cache is cut back after every token: evicted "
    "entries are really removed, so later tokens never see them, as in a serving system. Beside it, "
    "the dense generation of the same prompt, and the dense model's next-token distribution on the "
    "evicted run's own tokens (per-step KL: what eviction changed)."
)

PROMPT_CHARS = 300  # a sample's prompt: its first ~300 characters
MAX_PROMPT_CHARS = 20_000  # of a typed prompt, the last this many characters are tokenized
OWN = "your own text"
POLICY_LABELS = {"streaming_llm": "StreamingLLM", "h2o": "H2O", "tova": "TOVA", "key_norm": "key norm"}
POLICY_HELP = ("StreamingLLM: the first 4 tokens (attention sinks) and the most recent; H2O: the "
               "entries that received the most attention while decoding, half the budget kept for the "
               "most recent; TOVA: the current query's attention; key norm: keys with a low L2 norm; "
               "causal TEF: this project's heads, trained for the chosen model. The first token and the "
               "newest are always kept.")
LIMITS = {"budget": "cache budget (entries per layer)", "share": "keep share t"}
SHOWN_CONTEXT = 40  # prompt tokens shown before the dense run's text


def sample_prompt(text: str, chars: int = PROMPT_CHARS) -> str:
    """The first ~`chars` characters, cut back to the last space so no word is split."""
    if len(text) <= chars:
        return text
    head = text[:chars]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return head[:cut] if cut > chars // 2 else head


samples = {s.name: (s.title, sample_prompt(sample_text(s.name))) for s in list_samples()}
tefs = [c for c in usable_tef_checkpoints() if (c.card or {}).get("variant") == "causal"]

# --- choices (kept in the URL) -------------------------------------------------------------
left, right = st.columns([1, 2])
with left:
    picked = lm_picker(help="The causal TEF policy is offered for a model with causal TEF heads.")
lm = lm_or_stop(picked)
context = lm.context_length
model_tefs = [c.name for c in tefs if tef_base(c) == picked]
policies = {**{f"tef:{name}": f"causal TEF · {name}" for name in model_tefs}, **POLICY_LABELS}
with left:
    policy_key = bound(st.selectbox, "policy", next(iter(policies)), "Eviction policy", list(policies),
                       choices=list(policies), format_func=policies.get, help=POLICY_HELP)
    limit = bound(st.radio, "limit", "budget", "Cache limited by", list(LIMITS), choices=list(LIMITS),
                  format_func=LIMITS.get, horizontal=True,
                  help="A fixed number of cached entries per layer, or the entries whose scores make up a "
                       "share t of the total (the Text page's keep rule).")
    if limit == "budget":
        hi_budget = max(core.SINKS + 3, min(context, 1024))
        bound(st.slider, "budget", min(32, hi_budget), "Cache budget (entries per layer)", core.SINKS + 2,
              hi_budget, lo=core.SINKS + 2, hi=hi_budget,
              help=f"At least {core.SINKS + 2}: the attention sinks and the newest token.")
    else:
        bound(st.slider, "share", 0.5, "Keep share t", 0.05, 1.0, lo=0.05, hi=1.0, step=0.05,
              help="Entries are kept, highest score first, while their share of the scores stays within "
                   "t. 1.0 keeps every entry.")
    hi_tokens = max(9, min(256, context - 8))
    new_tokens = bound(st.slider, "new_tokens", min(64, context // 2, hi_tokens), "New tokens", 8, hi_tokens,
                       lo=8, hi=hi_tokens,
                       help=f"Prompt and new tokens share the model's context of {context:,} tokens: a "
                            "longer prompt is cut to its last tokens.")
    decoding = bound(st.radio, "decoding", "greedy", "Decoding", ["greedy", "sampled"],
                     choices=["greedy", "sampled"], horizontal=True,
                     help="Sampled: at temperature 1 with the seed below; both runs use the same draws.")
    if decoding == "sampled":
        bound(st.number_input, "seed", 0, "Seed", 0, 2**31 - 1, lo=0, hi=2**31 - 1)
with right:
    prompt_choices = [*samples, OWN]
    source = bound(st.selectbox, "prompt", next(iter(samples)), "Prompt", prompt_choices,
                   choices=prompt_choices,
                   format_func=lambda k: f"{samples[k][0]} (held out, first ~{PROMPT_CHARS} characters)"
                                         if k in samples else k)
    if source == OWN:
        text = text_box("Your prompt", "gen_own", 120,
                        f"Type or paste a prompt; the last {MAX_PROMPT_CHARS:,} characters, up to the "
                        "model's context less the new tokens, are used.")
    else:
        text = samples[source][1]
        st.text(text)
keep("gen_own")

if not text.strip():
    st.info("The prompt is empty: type a prompt, or pick a sample.")
    st.stop()

# --- the prompt's tokens: cut to leave room for the new ones ---------------------------------------
cut_chars = max(0, len(text) - MAX_PROMPT_CHARS)
text = text[-MAX_PROMPT_CHARS:] if cut_chars else text
enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
ids, pieces = list(enc["input_ids"]), token_pieces(text, enc["offset_mapping"])
room = context - new_tokens
cut_tokens = max(0, len(ids) - room)
ids, pieces = ids[cut_tokens:], pieces[cut_tokens:]
if cut_chars or cut_tokens:
    st.warning(f"The prompt is cut to its last {len(ids):,} tokens"
               + (f" (of the last {MAX_PROMPT_CHARS:,} characters)" if cut_chars else "")
               + f": with {new_tokens} new tokens it must fit the model's context of {context:,} tokens.")
if not ids:
    st.info("The prompt has no tokens: type a prompt, or pick a sample.")
    st.stop()

budget = int(st.session_state["budget"]) if limit == "budget" else None
t = float(st.session_state["share"]) if limit == "share" else None
seed = int(st.session_state["seed"]) if decoding == "sampled" else None
heads, policy, policy_id = None, policy_key, policy_key
if policy_key.startswith("tef:"):
    loaded = guarded(f"Loading TEF heads {policy_key[4:]!r}", get_tef, policy_key[4:])
    if loaded is None:
        st.stop()
    heads, _, _ = loaded
    policy, policy_id = "tef_causal", f"{policy_key}@{heads.cache_key}"
request = (lm.cache_key, tuple(ids), policy_id, budget, t, new_tokens, seed)


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_generation(lm: LoadedLM, ids: tuple[int, ...], policy: str, heads: TEFHeads | None,
                      budget: int | None, t: float | None, new_tokens: int, seed: int | None) -> dict:
    """Both generations, once per (model and weights, prompt, policy and heads, limit, tokens, seed):
    reruns and moves of the view widgets never generate again."""
    with progress_bar(f"Generating {new_tokens} tokens with and without eviction…") as report:
        g = core.generate_evicted(lm.model, list(ids), policy, max_new_tokens=new_tokens, budget=budget,
                                  t=t, heads=heads, seed=seed, progress=report)
    g.final_logits = None  # not shown; kept out of the cache
    decode = lambda x: lm.tokenizer.decode(x, clean_up_tokenization_spaces=False)  # noqa: E731
    tail = list(ids[-8:])
    return {"gen": g, "pieces": generated_pieces(decode, tail, g.ids),
            "dense_pieces": generated_pieces(decode, tail, g.dense_ids)}


done = st.session_state.setdefault("_generated", set())
with left:
    if st.button("Generate", key="generate", type="primary", icon=":material/play_arrow:"):
        done.add(request)
if request not in done:
    st.info("Press **Generate** to run both generations with these settings (a few seconds of work; "
            "results are kept, so coming back to these settings is instant).")
    st.stop()
result = guarded("Generating", cached_generation, lm, tuple(ids), policy, heads, budget, t, new_tokens, seed)
if result is None:
    done.discard(request)
    st.stop()
g: core.EvictedGeneration = result["gen"]
steps, n0, n = g.steps, len(ids), len(g.ids)
view = digest(repr(request))

# --- headline numbers ---------------------------------------------------------------------
final, dense_final = steps[-1].cache_bytes, g.dense_cache_bytes[-1]
kls = [s.kl_to_dense for s in steps]
finite = [k for k in kls if not math.isnan(k)]
mean_kl = sum(finite) / len(finite) if finite else float("nan")
layers = len(g.kept)
c = st.columns(4)
c[0].metric("Tokens generated", f"{n}", help=f"After a prompt of {n0} tokens.")
c[1].metric("Final cache vs dense", f"{dense_final / max(final, 1):.1f}x smaller",
            help=f"{final / 1024:,.1f} KB ({steps[-1].cache_entries:,} entries over {layers} layers) "
                 f"against {dense_final / 1024:,.1f} KB dense ({layers * (n0 + n - 1):,} entries).")
c[2].metric("Mean KL(dense ‖ evicted)", f"{mean_kl:.3g} nats",
            help="Per step, the dense model's next-token distribution on the evicted run's own tokens "
                 "against the evicted run's: 0 = eviction changed nothing.")
c[3].metric("Diverges at step", "never" if g.diverged_at is None else f"{g.diverged_at + 1} of {n}",
            help="The first generated token where the evicted run and the dense generation differ.")

# --- the texts ----------------------------------------------------------------------------
vcols = st.columns([1, 2])
with vcols[0]:
    options = [*range(layers), -1]
    layer = bound(st.selectbox, "cache_layer", 0, "Struck through: evicted from", options, choices=options,
                  format_func=lambda i: "every layer" if i < 0 else f"layer {i}'s cache",
                  help="Each layer keeps its own cache: a token can be gone from one layer and still cached "
                       "in another.")
with vcols[1]:
    if st.session_state.get("_gen_step_for") != request:  # a new generation opens at its last step
        st.session_state["_gen_step_for"], st.session_state["gen_step"] = request, n
    shown = n if n < 2 else st.slider("Show the text after step", 1, n, key="gen_step",
                                      help="The text as it grew: the cache's evictions up to that step.")
evicted_at = eviction_steps([s.evicted for s in steps], None if layer < 0 else layer)
gone = sum(1 for s in evicted_at.values() if s < shown)
where = "every layer" if layer < 0 else f"layer {layer}"
left, right = st.columns(2)
with left:
    st.markdown(f"**Evicted cache** ({policies[policy_key]}; {gone} of {n0 + shown} tokens evicted from "
                f"{where} by step {shown})")
    st.html(generation_strip_html(pieces, result["pieces"], ids, g.ids, shown, evicted_at, g.diverged_at,
                                  kls))
with right:
    first = max(0, n0 - SHOWN_CONTEXT)
    st.markdown("**Dense cache**" + (f" (the prompt's last {SHOWN_CONTEXT} tokens shown)" if first else ""))
    st.html(generation_strip_html(pieces[first:], result["dense_pieces"], ids[first:], g.dense_ids, shown,
                                  None, g.diverged_at, None, first_position=first))
st.caption("Orange: generated tokens; dark red: the first token where the two generations differ; struck "
           "through: tokens no longer in the chosen cache. Hover a token for its position, id, step and KL.")

# --- the charts ------------------------------------------------------------------------------
left, right = st.columns(2)
dense_entries = [layers * (n0 + i) for i in range(n)]
with left:
    st.markdown("**Cache size per step**")
    chart(cache_size_figure, [s.cache_bytes for s in steps], g.dense_cache_bytes,
          [s.cache_entries for s in steps], dense_entries, g.diverged_at, view=view, key="cache")
with right:
    st.markdown("**KL(dense ‖ evicted) per step**")
    chart(kl_figure, kls, result["pieces"], g.diverged_at, view=view, key="kl")
rows = [{"step": i + 1, "token": result["pieces"][i], "id": s.token,
         "dense_token": result["dense_pieces"][i] if i < len(result["dense_pieces"]) else None,
         "cache_entries": s.cache_entries, "dense_entries": dense_entries[i], "cache_bytes": s.cache_bytes,
         "dense_bytes": g.dense_cache_bytes[i], "kl_to_dense": s.kl_to_dense,
         "evicted_positions": sum(len(e) for e in s.evicted)} for i, s in enumerate(steps)]
download_buttons(rows, f"generate-{policy_key.replace(':', '_')}", key="steps-export")
