"""Attention patterns: sparse masks, how information flows through them, what they cost, and what
they do to a real model. Widgets and layout only: tefviz/attention/view.py computes what is shown."""

from __future__ import annotations

import streamlit as st

from tefviz.attention import view
from tefviz.attention.patterns import PATTERNS
from tefviz.viz import attention_figures as figs
from ui.bench import benchmark_button
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.loaders import get_lm, lm_picker
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import bound, page_keys

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("attention")  # session keys attention.<name>; the URL has <name>
names = list(PATTERNS)


@st.cache_data(max_entries=64, show_spinner="Evaluating the mask…")
def cached_views(key: str, n: int, _mod) -> dict:
    """Mask views and counts, once per (pattern, parameters, length)."""
    return view.mask_views(_mod, n)


@st.cache_data(max_entries=32, show_spinner=view.TILES_SPINNER)
def cached_block_table(key: str, n: int, block: int, _mod) -> view.BlockTable:
    """FlexAttention's tile map of the pattern, once per (pattern, parameters, length, block)."""
    return view.tile_table(key, _mod, n, block)


@st.cache_data(max_entries=32, show_spinner=False)
def cached_run(key: str, model_key: str, sample: str, layers: tuple, show: int, _lm, _mod, _ids):
    """The model dense and under the pattern, once per (pattern, model, text, layers, shown layer)."""
    with progress_bar("Running the model dense and under the pattern…") as report:
        return view.run_on_model(_lm, _ids, _mod, list(layers), show, progress=report)


def metrics(row: list[view.Metric]) -> None:
    for col, m in zip(st.columns(len(row)), row, strict=True):
        col.metric(**m.kwargs())


def param_widgets(pattern: str, slot: str, n: int) -> dict:
    """The pattern's parameters, each a widget in the URL."""
    values = {}
    for p in PATTERNS[pattern].params:
        name = key(view.param_key(pattern, p.name, slot))
        if p.kind == "bool":
            values[p.name] = int(bound(st.checkbox, name, bool(p.default), f"{p.name}: {p.help}"))
        else:  # a value the current length no longer allows starts again from the default
            default, hi = view.param_bounds(p.lo, p.hi, p.kind, p.default, n)
            values[p.name] = int(
                bound(st.number_input, name, default, f"{p.name}: {p.help}", p.lo, hi, lo=p.lo, hi=hi)
            )
    return values


def choices() -> tuple[int, view.PatternChoice]:
    """The lecture examples, the length, the pattern and the one it is combined with."""
    for i, (col, (label, values)) in enumerate(zip(st.columns(2), view.LECTURES, strict=True)):
        widgets = {key(name): value for name, value in values.items()}  # set before the next run
        col.button(label, key=key(f"lecture_{i}"), on_click=st.session_state.update, args=(widgets,))
    left, right = st.columns(2)
    with left:
        n = bound(st.select_slider, key("n"), 256, "Sequence length", view.LENGTHS, choices=view.LENGTHS)
        pattern = bound(
            st.selectbox,
            key("pattern"),
            view.default_pattern(),
            "Pattern",
            names,
            choices=names,
            format_func=view.pattern_label,
        )
        st.caption(f"Rule: `{PATTERNS[pattern].definition}`")
        params_a = param_widgets(pattern, "a", n)
    with right:
        options = [view.NONE, *names]
        combine = bound(
            st.selectbox,
            key("combine"),
            view.NONE,
            "Combine with",
            options,
            choices=options,
            format_func=view.pattern_label,
        )
        params_b: dict = {}
        if combine != view.NONE:
            bound(
                st.radio,
                key("how"),
                "or",
                "How",
                ["or", "and"],
                choices=["or", "and"],
                horizontal=True,
                help=view.HOW_HELP,
            )
            st.caption(f"Rule: `{PATTERNS[combine].definition}`")
            params_b = param_widgets(combine, "b", n)
    return n, view.PatternChoice(pattern, params_a, combine, params_b, st.session_state.get(key("how")))


def pattern_view(n: int, choice: view.PatternChoice) -> tuple:
    """The mask_mod at length n, its views, and the cost metrics (the page stops if it cannot be built)."""
    mod = guarded("This pattern cannot be built", choice.mask_mod, n) or st.stop()  # stop: raises
    views = guarded("Evaluating the pattern", cached_views, choice.key, n, mod) or st.stop()  # stop: raises
    metrics(view.cost_metrics(views["cost"]))
    st.caption(view.cost_caption(views["cost"]))
    return mod, views


def flow_section(n: int, views: dict, labels: list[str] | None) -> list[int]:
    """Hops between two tokens and the receptive field per layer; the path found (or [])."""
    st.subheader("Information flow")
    if "flow_mask" not in views:
        st.info(f"Information flow is computed up to {view.FLOW_LIMIT:,} tokens; pick a shorter length.")
        return []
    f1, f2, f3 = st.columns(3)
    src = int(bound(f1.number_input, key("source"), 0, "From token", 0, n - 1, lo=0, hi=n - 1))
    dst = int(bound(f2.number_input, key("target"), n - 1, "To token", 0, n - 1, lo=0, hi=n - 1))
    layers = f3.slider("Layers", 1, 24, 6, key=key("flow_layers"))
    flow = view.flow_view(views, src, dst, layers, labels)
    (st.success if flow.reached else st.warning)(flow.message)
    st.markdown(flow.max_hops)
    st.plotly_chart(figs.receptive_field_figure(flow.reach, n, flow.full), width="stretch", key=key("reach"))
    download_buttons(flow.rows(), "receptive-field", key=key("reach-export"))
    return flow.path


def mask_section(n: int, pattern: str, views: dict, labels: list[str] | None, path: list[int]) -> None:
    st.subheader("The mask")
    if "dense" in views:
        shown_path = path if 1 < len(path) <= 32 else []  # a long path would hide the mask
        st.plotly_chart(
            figs.mask_heatmap(views["dense"], labels, shown_path), width="stretch", key=key("mask")
        )
        download_buttons(view.mask_rows(views["dense"]), f"mask-{pattern}-{n}", key=key("mask-export"))
        return
    st.caption(view.density_caption(n))
    st.plotly_chart(figs.density_heatmap(views["density"], n), width="stretch", key=key("density"))
    download_buttons(
        view.density_export(views["density"], n), f"density-{pattern}-{n}", key=key("density-export")
    )


def flex_tiles_section(n: int, choice: view.PatternChoice, mod, density: float) -> None:
    st.subheader("What FlexAttention computes")
    blocks = view.flex_blocks(n)
    moved = view.nearest_block(st.session_state.get(key("flex_block")), blocks)
    if moved is not None:  # a new length
        st.session_state[key("flex_block")] = moved
    fx1, fx2 = st.columns(2)
    show_flex = bound(
        fx1.toggle, key("flex_show"), False, "Show FlexAttention's tiles", help=view.FLEX_SHOW_HELP
    )
    block = bound(
        fx2.select_slider,
        key("flex_block"),
        blocks[-1],
        "Tile side (tokens)",
        blocks,
        choices=blocks,
        disabled=len(blocks) == 1,
        help=view.FLEX_BLOCK_HELP,
    )
    tiles = show_flex and guarded(
        "Building FlexAttention's BlockMask", cached_block_table, choice.key, n, block, mod
    )
    if tiles:
        metrics(view.tile_metrics(tiles, density))
        st.caption(view.tiles_caption(block))
        st.plotly_chart(
            figs.block_table_figure(tiles.table, block, n), width="stretch", key=key("flex-tiles")
        )
        download_buttons(
            view.tiles_export(tiles, n, block),
            f"flex-tiles-{choice.pattern}-{n}-{block}",
            key=key("flex-export"),
        )


def on_the_model_section(choice: view.PatternChoice) -> None:
    """The pattern in a language model's layers: perplexity and one head's attention, dense and patterned."""
    st.subheader("On a language model")
    m1, m2, m3 = st.columns(3)
    if (lm_name := lm_picker(key("model"), m1)) is None:
        return
    samples = view.heldout_texts()
    sample = bound(
        m1.selectbox,
        key("sample"),
        next(iter(samples)),
        "Held-out text",
        list(samples),
        choices=list(samples),
    )
    if (lm := guarded(f"Loading {lm_name!r}", get_lm, lm_name)) is None:
        return
    n_layer, n_head = view.model_size(lm)
    every = list(range(n_layer))
    if not view.layers_fit(st.session_state.get(key("on_layers")), n_layer):  # fewer layers: all again
        st.session_state[key("on_layers")] = every
    on_layers = m2.multiselect("Apply to layers", every, key=key("on_layers"))
    show_layer = bound(m3.selectbox, key("show_layer"), 0, "Show layer", every, lo=0, hi=n_layer - 1)
    head = bound(m3.selectbox, key("head"), 0, "Head", list(range(n_head)), lo=0, hi=n_head - 1)
    ids = view.text_ids(lm, samples[sample], choice.length_unit())
    text_mod = guarded(f"The pattern does not fit the text's {len(ids)} tokens", choice.mask_mod, len(ids))
    if not on_layers:
        st.info("Choose at least one layer to apply the pattern to.")
    if text_mod is None or not on_layers:
        return
    run = guarded(
        "Running the model",
        cached_run,
        choice.key,
        f"{lm.name}@{lm.version}",
        sample,
        tuple(on_layers),
        show_layer,
        lm,
        text_mod,
        ids,
    )
    if run is not None:
        metrics(view.run_metrics(run, len(ids)))
        st.plotly_chart(view.pair_figure(lm, run, head, ids), width="stretch", key=key("pair"))


def cost_section(choice: view.PatternChoice) -> None:
    """The measured benchmark of the first pattern, run from a button."""
    st.subheader("Measured cost on this machine")
    st.caption(view.BENCH_INTRO)
    b1, b2 = st.columns(2)
    lengths = b1.multiselect(
        "Lengths", view.BENCH_LENGTHS, default=[1024, 2048, 4096], key=key("bench_lengths")
    )
    impls = b2.multiselect("Implementations", view.IMPLS, default=view.IMPLS, key=key("bench_impls"))
    result = benchmark_button(
        key("bench_result"),
        lengths,
        impls,
        "implementation",
        lambda progress: view.bench(choice, lengths, impls, progress),
    )
    if result:
        st.caption(f"{result['pattern']} {result['params']} on {result['device']}")
        st.plotly_chart(figs.bench_figure(result), width="stretch", key=key("bench"))
        for line in view.bench_failures(result):
            st.warning(literal(line))
        download_buttons(result["runs"], "bench-attention", key=key("bench-export"))


st.title("Attention patterns")
st.caption(view.INTRO)
n, choice = choices()
mod, views = pattern_view(n, choice)
labels = view.token_labels(n)
path = flow_section(n, views, labels)
mask_section(n, choice.pattern, views, labels, path)
flex_tiles_section(n, choice, mod, views["cost"]["density"])
on_the_model_section(choice)
cost_section(choice)
