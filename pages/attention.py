"""Attention patterns: sparse masks, how information flows through them, what they cost, and what
they do to a real model."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from torch.nn.attention.flex_attention import and_masks, or_masks

from tefviz.attention.bench import IMPLEMENTATIONS, bench_attention
from tefviz.attention.block_masks import BlockTable, block_mask_for, block_table
from tefviz.attention.flow import hops, max_hops, receptive_field
from tefviz.attention.masks import dense_mask, density_image, pattern_cost
from tefviz.attention.on_model import run_pattern
from tefviz.attention.patterns import PATTERNS, build_pattern
from tefviz.data.heldout import heldout_samples
from tefviz.errors import InputError
from tefviz.lm import model_parts
from tefviz.viz.attention_figures import (
    attention_pair_figure,
    bench_figure,
    block_table_figure,
    density_heatmap,
    mask_heatmap,
    receptive_field_figure,
)
from ui.bench import benchmark_button
from ui.errors import guarded, literal, show_error
from ui.export import download_buttons
from ui.loaders import get_lm, lm_picker
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound

through_app()  # a first visit straight to this page still gets app.py's navigation

st.title("Attention patterns")
st.caption(
    "Sparse attention lets each token read only some others. Pick a pattern (or combine two), see "
    "which (query, key) cells it allows, how many layers information needs to travel between two "
    "tokens, what it saves, and what it does to a real model's perplexity."
)

LENGTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
HEATMAP_CELLS = 256  # up to this length every cell is drawn; beyond, a density image
FLOW_LIMIT = 1024  # receptive field by boolean matrix powers, n^3 per layer
FLEX_BLOCKS = [16, 32, 64, 128]  # FlexAttention tile sides offered; 128 is its default
FLEX_MAX_TILES = 256  # at most this many tiles per side in the tile map
LECTURE_TOKENS = ["GLB", "the", "cat", "is", "very", "sad"]
names = list(PATTERNS)


def _set(**values) -> None:
    """A lecture example: set the widgets before they are drawn on the next run."""
    for k, v in values.items():
        st.session_state[k] = v


def _param_key(pattern: str, name: str, slot: str) -> str:
    return f"{slot}_{pattern}_{name}"


def _param_widgets(pattern: str, slot: str, n: int) -> dict:
    kind = PATTERNS[pattern]
    values = {}
    for p in kind.params:
        key = _param_key(pattern, p.name, slot)
        if p.kind == "bool":
            values[p.name] = int(bound(st.checkbox, key, bool(p.default), f"{p.name}: {p.help}"))
        else:
            # a length-like setting is offered up to 4n (a seed is not a length); a value the
            # current length no longer allows starts again from the default
            hi = p.hi if p.kind == "seed" else min(p.hi, max(p.lo, 4 * n))
            values[p.name] = int(bound(st.number_input, key, min(max(p.default, p.lo), hi),
                                       f"{p.name}: {p.help}", p.lo, hi, lo=p.lo, hi=hi))
    return values


# --- choices (kept in the URL) --------------------------------------------------------------
ex1, ex2 = st.columns(2)
ex1.button(
    "Lecture: window 4 (≈5n cells)",
    on_click=_set,
    kwargs=dict(
        pattern="sliding",
        combine="none",
        n=1024,
        **{_param_key("sliding", "window", "a"): 4, _param_key("sliding", "causal", "a"): False},
    ),
)
ex2.button(
    "Lecture: cat → GLB → sad",
    on_click=_set,
    kwargs=dict(
        pattern="sliding",
        combine="global",
        how="or",
        n=16,
        source=2,
        target=5,
        **{
            _param_key("sliding", "window", "a"): 2,
            _param_key("sliding", "causal", "a"): False,
            _param_key("global", "n_global", "b"): 1,
        },
    ),
)

left, right = st.columns(2)
with left:
    n = bound(st.select_slider, "n", 256, "Sequence length", LENGTHS, choices=LENGTHS)
    pattern = bound(st.selectbox, "pattern", "sliding" if "sliding" in names else names[0], "Pattern", names,
                    choices=names, format_func=lambda k: PATTERNS[k].label)
    st.caption(f"Rule: `{PATTERNS[pattern].definition}`")
    params_a = _param_widgets(pattern, "a", n)
with right:
    combine = bound(st.selectbox, "combine", "none", "Combine with", ["none", *names],
                    choices=["none", *names],
                    format_func=lambda k: "nothing" if k == "none" else PATTERNS[k].label)
    params_b: dict = {}
    if combine != "none":
        bound(st.radio, "how", "or", "How", ["or", "and"], choices=["or", "and"], horizontal=True,
              help="or: a cell is allowed by either pattern (Longformer, BigBird); and: by both")
        st.caption(f"Rule: `{PATTERNS[combine].definition}`")
        params_b = _param_widgets(combine, "b", n)

try:
    first = build_pattern(pattern, n, **params_a)
    mod = first.mask_mod
    if combine != "none":
        second = build_pattern(combine, n, **params_b)
        mod = (or_masks if st.session_state["how"] == "or" else and_masks)(mod, second.mask_mod)
except InputError as e:
    show_error("This pattern cannot be built", e)
    st.stop()


@st.cache_data(max_entries=64, show_spinner="Evaluating the mask…")
def cached_views(key: str, n: int, _mod) -> dict:
    """Mask views and counts, once per (pattern, parameters, length)."""
    out = {"cost": pattern_cost(_mod, n).as_dict()}
    if n <= HEATMAP_CELLS:
        out["dense"] = dense_mask(_mod, n).numpy()
    else:
        out["density"] = density_image(_mod, n, bins=256).numpy()
    if n <= FLOW_LIMIT:
        m = dense_mask(_mod, n)
        out["flow_mask"] = m.numpy()
        out["max_hops"] = max_hops(m)
    return out


@st.cache_data(max_entries=32, show_spinner="Building FlexAttention's BlockMask (about 2 s at 16,384 tokens "
               "on a CPU)…")
def cached_block_table(key: str, n: int, block: int, _mod) -> BlockTable:
    """FlexAttention's tile map of the pattern, once per (pattern, parameters, length, block)."""
    return block_table(block_mask_for((key,), _mod, n, "cpu", block))


def flex_blocks(n: int) -> list[int]:
    """Tile sides giving at most FLEX_MAX_TILES tiles per side and no tile longer than n."""
    fits = [b for b in FLEX_BLOCKS if n / FLEX_MAX_TILES <= b <= n]
    return fits or [min(FLEX_BLOCKS[-1], 1 << (n.bit_length() - 1))]


pattern_key = repr(
    (pattern, sorted(params_a.items()), combine, sorted(params_b.items()), st.session_state.get("how"))
)
views = guarded("Evaluating the pattern", cached_views, pattern_key, n, mod)
if views is None:
    st.stop()

# --- the mask and what it costs ----------------------------------------------------------------
cost = views["cost"]
c = st.columns(4)
c[0].metric("Active cells", f"{cost['active_cells']:,}", help=f"of {cost['cells']:,} = n²")
c[1].metric("Density", f"{cost['density']:.2%}", help="active cells / n²")
c[2].metric("Per token", f"{cost['active_per_token']:.1f} keys")
c[3].metric(
    "Saved vs dense",
    f"{cost['saving']:.1%}",
    help=f"attention FLOPs {cost['dense_gflops']:.2f} → {cost['sparse_gflops']:.2f} GFLOP; "
    f"score memory {cost['score_memory_dense_mb']:.1f} → {cost['score_memory_sparse_mb']:.1f} MB "
    "(12 heads x 64, fp16, if materialised)",
)
st.caption(
    f"For 12 heads of width 64: attention FLOPs {cost['dense_gflops']:.2f} → "
    f"{cost['sparse_gflops']:.2f} GFLOP; score memory {cost['score_memory_dense_mb']:.1f} → "
    f"{cost['score_memory_sparse_mb']:.1f} MB in fp16. Measured times are below."
)

labels = LECTURE_TOKENS + [str(i) for i in range(len(LECTURE_TOKENS), n)] if n == 16 else None
path: list[int] = []

st.subheader("Information flow")
if "flow_mask" not in views:
    st.info(f"Information flow is computed up to {FLOW_LIMIT:,} tokens; pick a shorter length.")
else:
    m = torch.from_numpy(views["flow_mask"])
    f1, f2, f3 = st.columns(3)
    src = int(bound(f1.number_input, "source", 0, "From token", 0, n - 1, lo=0, hi=n - 1))
    dst = int(bound(f2.number_input, "target", n - 1, "To token", 0, n - 1, lo=0, hi=n - 1))
    layers = f3.slider("Layers", 1, 24, 6, key="flow_layers")
    d, path = hops(m, src, dst)
    name = (lambda i: f"{i} ({labels[i]})") if labels else str
    if d is None:
        st.warning(
            f"Token {name(src)} can never reach token {name(dst)} through this pattern"
            + (" (information only flows forward in a causal pattern)" if dst < src else "")
            + "."
        )
    else:
        steps = [name(i) for i in path]
        if len(steps) > 13:  # a long path: its ends say enough
            steps = [*steps[:6], "…", *steps[-6:]]
        st.success(f"{name(src)} reaches {name(dst)} in **{d} hop(s)**: " + " → ".join(steps))
    mh = views["max_hops"]
    st.markdown(f"Largest number of hops between two tokens: **{'never connected' if mh is None else mh}**.")
    reach = receptive_field(m, layers)
    full = receptive_field(torch.ones(n, n, dtype=torch.bool).tril(), layers)
    st.plotly_chart(receptive_field_figure(reach, n, full), width="stretch", key="reach")
    download_buttons(
        [
            {"layers": i + 1, "tokens_reached": r, "full_causal": f}
            for i, (r, f) in enumerate(zip(reach, full, strict=True))
        ],
        "receptive-field",
        key="reach-export",
    )

st.subheader("The mask")
if "dense" in views:
    shown_path = path if 1 < len(path) <= 32 else []  # a long path would hide the mask
    st.plotly_chart(mask_heatmap(views["dense"], labels, shown_path), width="stretch", key="mask")
    rows = np.argwhere(views["dense"])
    download_buttons(
        [{"query": int(q), "key": int(k)} for q, k in rows], f"mask-{pattern}-{n}", key="mask-export"
    )
else:
    st.caption(
        f"{n:,} tokens: each pixel summarises a {n // 256}x{n // 256} tile (share of cells allowed); "
        "the full matrix is never sent to the browser."
    )
    st.plotly_chart(density_heatmap(views["density"], n), width="stretch", key="density")
    download_buttons(
        {"n": n, "bins": 256, "density": views["density"].round(5).tolist()},
        f"density-{pattern}-{n}",
        key="density-export",
    )

st.subheader("What FlexAttention computes")
blocks = flex_blocks(n)
if st.session_state.get("flex_block") not in (None, *blocks):  # the length changed
    st.session_state["flex_block"] = min(blocks, key=lambda b: abs(b - st.session_state["flex_block"]))
fx1, fx2 = st.columns(2)
show_flex = bound(fx1.toggle, "flex_show", False, "Show FlexAttention's tiles",
                  help="Builds the pattern's BlockMask tile band by tile band (about 2 s at 16,384 tokens "
                       "on a 2-core CPU), then cached.")
block = bound(fx2.select_slider, "flex_block", blocks[-1], "Tile side (tokens)", blocks, choices=blocks,
              disabled=len(blocks) == 1,
              help=f"FlexAttention's default is 128; sides giving more than {FLEX_MAX_TILES} tiles per side "
                   "are not offered.")
if show_flex:
    tiles = guarded("Building FlexAttention's BlockMask", cached_block_table, pattern_key, n, block, mod)
    if tiles is not None:
        counts = tiles.counts()
        computed = counts["partial"] + counts["full"]
        t = st.columns(4)
        t[0].metric(f"Tiles computed, of {counts['tiles']:,}", f"{computed:,}", help="partial + full tiles")
        t[1].metric(
            "Partial tiles", f"{counts['partial']:,}", help="the mask_mod is evaluated on each cell inside"
        )
        t[2].metric("Full tiles", f"{counts['full']:,}", help="computed without evaluating the mask")
        t[3].metric(
            "Share of dense work",
            f"{tiles.computed_share:.1%}",
            help=f"computed tiles / all tiles; the pattern itself allows {cost['density']:.2%} of the cells, "
            "the rest of a partial tile is computed and masked out",
        )
        st.caption(
            f"FlexAttention works in tiles of {block}x{block} tokens: skipped tiles cost nothing, full "
            "tiles run without evaluating the mask, and partial tiles evaluate the mask_mod on every "
            "cell. The mask is built one band of query tiles at a time, so the n x n matrix is never "
            "materialised (16,384 tokens: +2.6 GB built eagerly by create_block_mask on this CPU, "
            "+24 MB in bands)."
        )
        st.plotly_chart(block_table_figure(tiles.table, block, n), width="stretch", key="flex-tiles")
        download_buttons(
            {"n": n, "block": block, "table": tiles.table.tolist()},
            f"flex-tiles-{pattern}-{n}-{block}",
            key="flex-export",
        )

# --- on the real model -------------------------------------------------------------------------
st.subheader("On a language model")
m1, m2, m3 = st.columns(3)
lm_name = lm_picker(m1)
if lm_name is not None:
    samples = {s["id"]: s["text"] for s in heldout_samples()}
    sample = bound(m1.selectbox, "sample", next(iter(samples)), "Held-out text", list(samples),
                   choices=list(samples))
    lm = guarded(f"Loading {lm_name!r}", get_lm, lm_name)
    if lm is not None:
        n_layer, n_head = model_parts(lm.model).n_layer, model_parts(lm.model).n_head
        # another model may have fewer layers: a choice it cannot take starts again from all layers
        chosen = st.session_state.get("on_layers")
        if chosen is None or any(i >= n_layer for i in chosen):
            st.session_state["on_layers"] = list(range(n_layer))
        on_layers = m2.multiselect("Apply to layers", list(range(n_layer)), key="on_layers")
        show_layer = bound(m3.selectbox, "show_layer", 0, "Show layer", list(range(n_layer)), lo=0,
                           hi=n_layer - 1)
        head = bound(m3.selectbox, "head", 0, "Head", list(range(n_head)), lo=0, hi=n_head - 1)
        ids = lm.tokenizer(samples[sample], add_special_tokens=False)["input_ids"][: lm.context_length]
        n_text = len(ids)
        block = max(PATTERNS[pattern].length_unit(params_a),
                    PATTERNS[combine].length_unit(params_b) if combine != "none" else 1)
        n_text -= n_text % block
        try:
            text_mod = build_pattern(pattern, n_text, **params_a).mask_mod
            if combine != "none":
                other = build_pattern(combine, n_text, **params_b).mask_mod
                text_mod = (or_masks if st.session_state["how"] == "or" else and_masks)(text_mod, other)
        except InputError as e:
            show_error(f"The pattern does not fit the text's {n_text} tokens", e)
            text_mod = None

        @st.cache_data(max_entries=32, show_spinner=False)
        def cached_run(key: str, model_key: str, sample: str, layers: tuple, show: int, _lm, _mod, _ids):
            with progress_bar("Running the model dense and under the pattern…") as report:
                run = run_pattern(
                    _lm.model,
                    torch.tensor(_ids, device=_lm.device),
                    dense_mask(_mod, len(_ids)),
                    list(layers),
                    show,
                )
                report(1.0)
            return run

        if text_mod is not None and on_layers:
            run = guarded(
                "Running the model",
                cached_run,
                pattern_key,
                f"{lm.name}@{lm.version}",
                sample,
                tuple(on_layers),
                show_layer,
                lm,
                text_mod,
                ids[:n_text],
            )
            if run is not None:
                k = st.columns(3)
                k[0].metric("Perplexity, dense", f"{run.dense_perplexity:,.2f}")
                k[1].metric(
                    "Perplexity, patterned",
                    f"{run.patterned_perplexity:,.2f}",
                    delta=f"{run.patterned_perplexity / run.dense_perplexity:.2f}x",
                    delta_color="inverse",
                )
                k[2].metric("Tokens", f"{n_text}")
                toks = [lm.tokenizer.decode([i]) for i in ids[:n_text]]
                st.plotly_chart(
                    attention_pair_figure(
                        run.dense_attention[head].numpy(), run.patterned_attention[head].numpy(), toks
                    ),
                    width="stretch",
                    key="pair",
                )
        elif not on_layers:
            st.info("Choose at least one layer to apply the pattern to.")

# --- measured cost ---------------------------------------------------------------------------
st.subheader("Measured cost on this machine")
st.caption(
    "Dense causal SDPA (the baseline) against SDPA with a boolean mask, compiled FlexAttention "
    "with a BlockMask and a block gather, each case in its own process (time and peak memory). "
    "Uses the first pattern above with its parameters at each length."
)
b1, b2 = st.columns(2)
bench_lengths = b1.multiselect(
    "Lengths", [512, 1024, 2048, 4096, 8192, 16384], default=[1024, 2048, 4096], key="bench_lengths"
)
bench_impls = b2.multiselect(
    "Implementations", list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS), key="bench_impls"
)
result = benchmark_button(
    "bench_result", bench_lengths, bench_impls, "implementation",
    lambda progress: bench_attention(sorted(bench_lengths), pattern, params_a, tuple(bench_impls),
                                     progress=progress),
)
if result:
    st.caption(f"{result['pattern']} {result['params']} on {result['device']}")
    st.plotly_chart(bench_figure(result), width="stretch", key="bench")
    failed = [r for r in result["runs"] if "error" in r]
    for r in failed:
        st.warning(literal(f"{r['impl']} at {r['n']} tokens failed: {r['error']}"))
    download_buttons(result["runs"], "bench-attention", key="bench-export")
