"""Efficient attention: Performer, Linformer and the infinity-former's continuous memory against
exact attention, on the embedded LM's real queries, keys and values, and their speed by length."""

from __future__ import annotations

import streamlit as st
import torch

from tefviz.attention.approx import APPROXIMATIONS
from tefviz.attention.approx.infinity_former import RBFMemory
from tefviz.attention.approx_bench import METHODS, bench_approx
from tefviz.attention.approx_view import SIZES, Comparison, compare, error_sweep
from tefviz.attention.on_model import qkv_at
from tefviz.data.heldout import heldout_samples
from tefviz.errors import InputError
from tefviz.lm import model_parts
from tefviz.models import LoadedLM
from tefviz.viz.attention_figures import (
    attention_pair_figure,
    bench_figure,
    error_vs_size_figure,
    signal_figure,
)
from ui.bench import benchmark_button
from ui.cache_keys import cache_keys
from ui.compute import one_at_a_time
from ui.errors import guarded, literal, show_error
from ui.export import download_buttons
from ui.loaders import lm_or_stop, lm_picker
from ui.routing import through_app
from ui.state import bound, page_keys

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("efficient_attention")  # session keys efficient_attention.<name>; the URL has <name>

st.title("Efficient attention")
st.caption(
    "Exact attention costs n² in time and memory. Performer replaces the softmax kernel with random "
    "features, Linformer projects keys and values to k rows, and the ∞-former keeps a continuous "
    "memory of N basis functions. Here each runs on the real queries, keys and values of a "
    "language model (pick one), beside the exact attention it approximates."
)

# --- choices (kept in the URL) ----------------------------------------------------------------
a, b, c = st.columns(3)
with a:
    model_name = lm_picker(key("model"))
lm = lm_or_stop(model_name)
samples = {s["id"]: s["text"] for s in heldout_samples()}
methods = list(APPROXIMATIONS)
parts = model_parts(lm.model)
n_layer, n_head = parts.n_layer, parts.n_head
max_tokens = min(512, lm.context_length)
token_choices = [n for n in (32, 64, 128, 256, 512) if n <= max_tokens] or [max_tokens]
with a:
    sample = bound(
        st.selectbox,
        key("sample"),
        next(iter(samples)),
        "Held-out text",
        list(samples),
        choices=list(samples),
    )
    n_tokens = bound(
        st.select_slider,
        key("tokens"),
        token_choices[min(2, len(token_choices) - 1)],
        "Tokens",
        token_choices,
        choices=token_choices,
    )
with b:
    layer = bound(st.selectbox, key("layer"), 0, "Layer", list(range(n_layer)), lo=0, hi=n_layer - 1)
    head = bound(
        st.selectbox,
        key("head"),
        0,
        "Head",
        list(range(n_head)),
        lo=0,
        hi=n_head - 1,
        help=f"{n_head} query heads"
        + (
            f" sharing {parts.n_kv_head} key/value heads (grouped-query attention)"
            if parts.n_kv_head != n_head
            else ""
        ),
    )
with c:
    method = bound(
        st.selectbox,
        key("method"),
        methods[0],
        "Approximation",
        methods,
        choices=methods,
        format_func=lambda m: APPROXIMATIONS[m].label,
    )
    cls = APPROXIMATIONS[method]
    sizes = [s for s in SIZES if not cls.size_at_most_length or s <= n_tokens]
    size = bound(
        st.select_slider,
        key("size"),
        64 if 64 in sizes else sizes[-1],
        f"{cls.size_name}: {cls.size_help}",
        sizes,
        choices=sizes,
    )
    causal_methods = ", ".join(
        ["exact attention", *(c.label for c in APPROXIMATIONS.values() if c.causal_ok)]
    )
    causal = bound(st.checkbox, key("causal"), False, f"Causal: {causal_methods} only")


@st.cache_data(
    max_entries=32, show_spinner="Reading the model's queries, keys and values…", hash_funcs=cache_keys()
)
@one_at_a_time
def cached_qkv(lm: LoadedLM, sample: str, n_tokens: int, layer: int) -> tuple:
    ids = lm.tokenizer(samples[sample], add_special_tokens=False)["input_ids"][:n_tokens]
    q, k, v = qkv_at(lm.model, torch.tensor(ids, device=lm.device), layer)
    return q.cpu(), k.cpu(), v.cpu(), [lm.tokenizer.decode([i]) for i in ids]


def head_qkv(lm: LoadedLM, sample: str, n_tokens: int, layer: int, head: int) -> tuple:
    """(q, k, v) of one head, from the layer's cached capture."""
    q_all, k_all, v_all, _ = cached_qkv(lm, sample, n_tokens, layer)
    return q_all[head], k_all[head], v_all[head]


got = guarded("Reading the model", cached_qkv, lm, sample, n_tokens, layer)
if got is None:
    st.stop()
toks, v = got[3], got[2][head]  # the head's values: the continuous memory below fits them
where = (lm, sample, n_tokens, layer, head)  # which head's queries, keys and values


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=cache_keys())
def cached_compare(where: tuple, method: str, size: int, causal: bool) -> Comparison:
    return compare(*head_qkv(*where), method, size, causal)


try:
    comp = cached_compare(where, method, size, causal)
except InputError as e:
    show_error(f"{cls.label} at {cls.size_name} = {size}", e)
    comp = None
if comp is not None:
    m = st.columns(3)
    m[0].metric("Relative output error", f"{comp.relative_error:.3f}", help="‖approx − exact‖ / ‖exact‖")
    m[1].metric("Mean row KL", f"{comp.mean_row_kl:.3f} nats", help="KL(exact row ‖ implied row), per query")
    m[2].metric("Tokens", f"{len(toks)}")
    st.plotly_chart(
        attention_pair_figure(
            comp.exact.numpy(),
            comp.implied.numpy(),
            toks,
            titles=("exact softmax", f"{cls.label}, {cls.size_name} = {size}"),
        ),
        width="stretch",
        key=key("pair"),
    )
    st.caption(
        "The implied matrix is the one that multiplies the values: out = M v. Linformer's rows "
        "need not be distributions (its projections are random here, learned in the paper)."
    )

st.subheader("Error as the approximation grows")


@st.cache_data(max_entries=16, show_spinner="Sweeping sizes for every method…", hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_sweep(where: tuple, causal: bool) -> list[dict]:
    return error_sweep(*head_qkv(*where), causal)


sweep = guarded("Sweeping sizes", cached_sweep, where, causal)
if sweep:
    metric = st.radio(
        "Error",
        ["relative_error", "mean_row_kl"],
        horizontal=True,
        key=key("sweep_metric"),
        format_func=lambda s: s.replace("_", " "),
    )
    st.plotly_chart(error_vs_size_figure(sweep, metric), width="stretch", key=key("sweep"))
    download_buttons(sweep, "approximation-error", key=key("sweep-export"))

if cls.continuous_memory or st.checkbox("Show the continuous memory", key=key("show_memory")):
    st.subheader("The ∞-former's continuous memory")
    dim = st.slider("Value channel", 0, v.shape[-1] - 1, 0, key=key("memory_dim"))
    n_basis = size if cls.continuous_memory else 64
    try:
        mem = RBFMemory(min(n_basis, len(toks)))
        t = mem.positions(len(toks))
        t_fine = torch.linspace(0, 1, 400)
        recon = mem.signal(mem.fit(v), t_fine)[:, dim]
        fitted = mem.signal(mem.fit(v), t)
        err = float((fitted - v).norm() / v.norm())
        st.plotly_chart(
            signal_figure(t.numpy(), v[:, dim].numpy(), recon.numpy(), t_fine.numpy()),
            width="stretch",
            key=key("memory"),
        )
        st.caption(
            f"{mem.n} Gaussian basis functions fitted by ridge regression to {len(toks)} value "
            f"vectors; relative reconstruction error over all channels {err:.3f}. The memory "
            "stays N rows however long the sequence grows."
        )
    except InputError as e:
        show_error("The continuous memory", e)

# --- speed and memory vs length ----------------------------------------------------------------
st.subheader("Speed and memory vs length on this machine")
st.caption(
    "Each method at each length runs in its own process (time per call, peak memory over the "
    "inputs); one head of width 64; Performer m = 256, Linformer k = 256, ∞-former N = 256. "
    "The legend gives each line's fitted slope of log time on log length (2: quadratic, 1: linear)."
)
s1, s2 = st.columns(2)
lengths = s1.multiselect(
    "Lengths",
    [512, 1024, 2048, 4096, 8192, 16384, 32768],
    default=[1024, 2048, 4096],
    key=key("bench_lengths"),
)
chosen = s2.multiselect("Methods", list(METHODS), default=list(METHODS), key=key("bench_methods"))
result = benchmark_button(
    key("approx_bench"),
    lengths,
    chosen,
    "method",
    lambda progress: bench_approx(sorted(lengths), tuple(chosen), causal=False, progress=progress),
)
if result:
    st.caption(f"On {result['device']}")
    st.plotly_chart(
        bench_figure(result, key="method", slopes=result["slopes"]), width="stretch", key=key("approx-bench")
    )
    for r in result["runs"]:
        if "median_s" not in r:
            st.info(literal(f"{r['method']} at {r['n']} tokens: {r.get('skipped') or r.get('error')}"))
    download_buttons(result["runs"], "bench-approx", key=key("approx-bench-export"))
