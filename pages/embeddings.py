"""Embeddings: compress the LM's token embedding (and its tied output head) and see what it costs."""

from __future__ import annotations

import streamlit as st

from tefviz.analysis import token_pieces
from tefviz.data.heldout import heldout_samples, heldout_text
from tefviz.embeddings.compressors import COMPRESSORS, dense_bytes
from tefviz.embeddings.evaluate import (
    CompressionResult,
    evaluate_compression,
    pareto_sweep,
    windows_perplexity,
)
from tefviz.lm import model_parts
from tefviz.models import LoadedLM
from tefviz.text.evaluate import windows_of
from tefviz.viz.embedding_figures import EMBEDDINGS_GOAL, pareto_figure, row_error_figure
from tefviz.viz.tokens import token_strip_html
from ui.cache_keys import cache_keys
from ui.compute import one_at_a_time
from ui.errors import guarded
from ui.export import download_buttons
from ui.loaders import lm_or_stop, lm_picker
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, page_keys

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("embeddings")  # session keys embeddings.<name>; the URL has <name>

st.title("Embeddings: how far they compress")
st.caption(
    "The token embedding (tied to the output head) is one of the largest matrices of a small LM. "
    "Compress it (tensor train, low rank, quantisation, dynamic bit-width, a shared low-bit base "
    "with a LoRA correction) and see the bytes saved, the held-out perplexity paid, and which "
    "tokens suffer."
)

# --- choices (kept in the URL) -------------------------------------------------------------------
left, right = st.columns([1, 2])
with left:
    model_name = lm_picker(key("model"))
lm = lm_or_stop(model_name)
parts = model_parts(lm.model)
vocab, dim = parts.embedding.weight.shape[0], parts.d_model
methods = list(COMPRESSORS)
if not parts.tied:
    st.caption(f"`{lm.name}` has a separate output head: only its input embedding is compressed.")
with left:
    method = bound(
        st.selectbox,
        key("method"),
        methods[0],
        "Method",
        methods,
        choices=methods,
        format_func=lambda m: COMPRESSORS[m].label,
    )
    knobs = {}
    for k in COMPRESSORS[method].knobs:
        name = key(f"{method}_{k.name}")
        hi = max(k.lo, min(k.hi, dim)) if k.kind == "rank" else k.hi  # a rank cannot exceed the width
        if hi == k.lo:  # one possible value: nothing to slide (a slider needs min < max)
            knobs[k.name] = k.lo
            st.caption(f"{k.name} = {k.lo} ({k.help})")
            continue
        knobs[k.name] = int(
            bound(st.slider, name, min(k.default, hi), f"{k.name}: {k.help}", k.lo, hi, lo=k.lo, hi=hi)
        )
    n_windows = bound(
        st.select_slider,
        key("windows"),
        4,
        "Held-out windows",
        [1, 2, 4, 8],
        choices=[1, 2, 4, 8],
        help=f"windows of {lm.context_length} tokens of held-out Austen",
    )


@st.cache_data(max_entries=4, show_spinner="Measuring the dense model…", hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_windows(lm: LoadedLM, n_windows: int) -> tuple[list, float]:
    """Held-out windows of the model's context and the dense model's perplexity on them."""
    ids = lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"]
    wins = windows_of(ids, lm.context_length, n_windows)
    return wins, windows_perplexity(lm.model, wins)


@st.cache_data(max_entries=128, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time
def cached_eval(lm: LoadedLM, n_windows: int, method: str, knobs: tuple) -> CompressionResult:
    wins, dense = cached_windows(lm, n_windows)
    with progress_bar(f"Compressing ({COMPRESSORS[method].label}) and measuring perplexity…") as report:
        result = evaluate_compression(lm.model, wins, method, dict(knobs), dense)
        report(1.0)
    return result


got = guarded("Measuring the dense model", cached_windows, lm, n_windows)
if got is None:
    st.stop()
wins, dense_ppl = got
result = guarded("Compressing", cached_eval, lm, n_windows, method, tuple(sorted(knobs.items())))
if result is None:
    st.stop()

with right:
    c = st.columns(3)
    c[0].metric(
        "Embedding bytes",
        f"{result.bytes / 2**20:.2f} MiB",
        delta=f"{result.ratio:.1f}x smaller" if result.ratio >= 1 else f"{1 / result.ratio:.1f}x larger",
        help=f"dense fp16: {dense_bytes(vocab, dim) / 2**20:.2f} MiB ({vocab:,} x {dim})",
    )
    c[1].metric(
        "Held-out perplexity",
        f"{result.perplexity:,.2f}",
        delta=f"{result.perplexity / dense_ppl:.3f}x dense",
        delta_color="inverse",
        help=f"dense: {dense_ppl:.2f}",
    )
    c[2].metric(
        "Mean row error", f"{float(result.row_error.mean()):.3f}", help="‖row − original‖ / ‖original‖"
    )
    goal = EMBEDDINGS_GOAL.met(result.ratio, result.perplexity / dense_ppl)
    (st.success if goal else st.info)(
        f"{'Meets' if goal else 'Does not meet'} the goal: {EMBEDDINGS_GOAL} "
        f"({result.ratio:.1f}x, {100 * (result.perplexity / dense_ppl - 1):+.1f} %)."
    )

# --- which tokens suffer ------------------------------------------------------------------------
st.subheader("Which tokens suffer")
errors = result.row_error.numpy()
samples = {s["id"]: s["text"] for s in heldout_samples()}
sample = bound(
    st.selectbox, key("sample"), next(iter(samples)), "Show on", list(samples), choices=list(samples)
)
text = samples[sample][:1500]
enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
pieces = token_pieces(text, enc["offset_mapping"])
errs = [float(errors[i]) for i in enc["input_ids"]]
titles = [
    f"{p!r} (id {i})\nrow error {e:.3f}" for p, i, e in zip(pieces, enc["input_ids"], errs, strict=True)
]
st.html(token_strip_html(pieces, errs, titles, vmax=max(float(errors.max()), 1e-6)))
st.caption("Each token coloured by how far its compressed embedding row is from the trained one.")
st.plotly_chart(row_error_figure(errors), width="stretch", key=key("row-errors"))
download_buttons(
    [
        {"id": i, "token": lm.tokenizer.decode([i]), "row_error": round(float(e), 5)}
        for i, e in enumerate(errors)
    ],
    f"row-errors-{method}",
    key=key("rows-export"),
)

# --- the Pareto front ---------------------------------------------------------------------------
st.subheader("Bytes vs perplexity for every method")


@st.cache_data(max_entries=4, show_spinner=False, hash_funcs=cache_keys())
@one_at_a_time(lane="long")
def cached_pareto(lm: LoadedLM, n_windows: int) -> list[dict]:
    wins, _ = cached_windows(lm, n_windows)
    with progress_bar("Sweeping every method's settings…") as report:
        return pareto_sweep(lm.model, wins, progress=report)


if st.toggle("Compute the Pareto front (about 25 settings)", key=key("pareto")):
    rows = guarded("Sweeping", cached_pareto, lm, n_windows)
    if rows:
        st.plotly_chart(
            pareto_figure(rows, dense_bytes(vocab, dim), dense_ppl, (result.bytes, result.perplexity)),
            width="stretch",
            key=key("pareto-chart"),
        )
        best = [r for r in rows if EMBEDDINGS_GOAL.met(r["compression"], r["perplexity_ratio"])]
        if best:
            top = max(best, key=lambda r: r["compression"])
            st.success(
                f"Smallest within {EMBEDDINGS_GOAL.within} of dense: {top['method']} "
                f"({', '.join(f'{k[5:]}={v}' for k, v in top.items() if k.startswith('knob_'))}): "
                f"{top['compression']:.1f}x fewer bytes, perplexity {top['perplexity']:.2f} "
                f"({top['perplexity_ratio']:.3f}x)."
            )
        else:
            st.info(
                f"No setting in the sweep reaches {EMBEDDINGS_GOAL.compression:g}x fewer bytes within "
                f"{EMBEDDINGS_GOAL.within} of dense perplexity."
            )
        download_buttons(rows, "embedding-pareto", key=key("pareto-export"))
