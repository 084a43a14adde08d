"""Images: which patches a tokenizer keeps at a budget, and what that costs in accuracy. Widgets and layout
only: each tokenizer declares its budgets and figures, tefviz/images/view.py computes what is shown."""

from __future__ import annotations

import contextlib
import hashlib
import json

import numpy as np
import streamlit as st

from tefviz.images import evaluate, view
from tefviz.images.budget import Budget, Selection
from tefviz.images.figures import FigureSpec, rank_views, spectrum_views
from tefviz.viz.image_figures import accuracy_tokens_figure
from ui import image_cache as cache
from ui import loaders
from ui.charts import chart, digest
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.image_inputs import SOURCES, budget_controls, input_picker, legacy
from ui.routing import through_app
from ui.state import bound, page_keys

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("images")  # session keys images.<name>; the URL has <name> (and reads old img_<name>)


def draw(specs: list[FigureSpec], views: dict[str, str], where: list | None = None) -> None:
    """Each figure through the server-wide figure cache, keyed by what it depends on."""
    for i, f in enumerate(specs):
        chart(f.build, view=views[f.depends], key=key(f.key), where=where[i] if where else None)


def headline(res: view.ImageAnalysis, sel: Selection, image_key: str) -> None:
    """The metrics, the tokenizer's figures, the class probabilities and the pictures."""
    for col, m in zip(st.columns(4), view.headline_metrics(res, sel, label), strict=False):
        col.metric(m.label, m.value, m.delta, delta_color=m.color)
    fig_view = f"{model_key}|{image_key}|{sel}"  # what the figures of this image at this setting depend on
    *row, probs = view.main_figures(model, res, image, sel, label)
    draw(row, {"image": image_key, "setting": fig_view}, st.columns(3))
    left, right = st.columns([2, 1])
    draw([probs], {"label": f"{fig_view}|{label}"}, [left])
    if original is not None:
        photo = cache.picture_bytes(f"{image_key}|original", original, 1, "JPEG")
        right.image(photo, caption="Your picture (greyscale)", width="stretch", output_format="JPEG")
    seen = cache.picture_bytes(image_key, image, 6, "PNG")
    right.image(seen, caption="What the model sees (32x32, upscaled)", output_format="PNG")
    download_buttons(res.export(), "image_tokens", key("image_export"))


def accuracy_tab(budget: Budget | None, subset: evaluate.SubsetResult | None) -> None:
    measured = None
    if subset is not None:
        acc = subset.accuracy(cache.shipped_subset()[1].numpy())
        measured = evaluate.Measured(labels[name], budget and budget.field, subset.mean_tokens, acc)
        st.caption(measured.summary)
    curves, current = evaluate.accuracy_curves([(labels[c.name], c.config, c.card) for c in models], measured)
    if not curves:
        st.info(
            "No evaluation table in the checkpoint cards yet: run "
            "`python -m tefviz eval images --write-cards`."
        )
        return
    chart(
        accuracy_tokens_figure,
        curves,
        current,
        key=key("acc_tokens"),  # the curves come from the cards
        view=digest(json.dumps([curves, current], sort_keys=True, default=str)),
    )
    st.caption(
        "Lines: the table `python -m tefviz eval images --write-cards` stored in each checkpoint's "
        "card. TNT's token count is averaged over the encoder blocks (it prunes inside)."
    )
    download_buttons(evaluate.curve_rows(curves), "accuracy_vs_tokens", key("acc_export"))


def flips_tab(subset: evaluate.SubsetResult | None, measure: bool) -> None:
    if not measure:
        st.info("Turn on the measurement above to see which evaluation images flip at this setting.")
        return
    full = guarded("Evaluating the subset with every token", cache.subset, model_key, Selection())
    if subset is None or full is None:
        return
    y = cache.shipped_subset()[1]
    flips = view.flipped(full.pred, subset.pred, y.numpy())
    for col, (group, text) in zip(st.columns(3), view.FLIP_GROUPS.items(), strict=True):
        col.metric(text, len(flips[group]))
    group = st.radio(
        "Show",
        list(view.FLIP_GROUPS),
        horizontal=True,
        key=key("flip_group"),
        format_func=lambda s: s.replace("_", " "),
    )
    if len(flips[group]) == 0:
        st.info("No evaluation image falls in this group at this setting.")
    grid = st.columns(8)
    for j, (i, caption) in enumerate(view.flip_gallery(flips, group, full.pred, subset.pred, y.numpy())):
        grid[j % 8].image(cache.subset_image_png(int(i)), caption=caption, output_format="PNG")
        where = dict(zip((key("cls"), key("idx")), view.subset_position(y.numpy(), i), strict=True))
        grid[j % 8].button(
            "Open",
            key=key(f"open_{i}"),
            help="Show this image above",  # set before the rerun
            on_click=st.session_state.update,
            args=({key("source"): SOURCES[0], **where},),
        )
    if len(flips[group]) > 24:
        st.caption(f"First 24 of {len(flips[group])}.")


def training_free_tab(image: np.ndarray, original: np.ndarray | None) -> None:
    vt, what, free_view = view.training_free_view(image, original)
    n, (sides, energy, ev) = vt.shape[0], cache.spectral_summary(free_view, vt)
    st.caption(
        f"On the {what}: what the FFT tokenizer's square and exact SVD's components keep, with no model."
    )
    a, b = st.columns(2)  # one setting per view size
    side_name, k_name = f"free_side_{n}", f"free_k_{n}"
    side = bound(
        a.select_slider,
        key(side_name),
        n // 2,
        "Low-pass side",
        sides,
        choices=sides,
        legacy=legacy(side_name),
    )
    draw(spectrum_views(vt, side, sides, energy), {"setting": f"{free_view}|{side}"}, [a] * 3)
    k = bound(b.slider, key(k_name), 4, "Rank k", 1, n, lo=1, hi=n, legacy=legacy(k_name))
    draw(rank_views(vt, k, ev), {"setting": f"{free_view}|{k}"}, [b] * 3)


def start_measuring(sel: Selection) -> None:
    """Start classifying the subset at `sel` in the worker. Also the budget slider's callback, which
    Streamlit runs before the script: under a class the job then starts before this session's run
    has queued behind everyone else's for the interpreter."""
    if not st.session_state.get(key("measure"), True):
        return
    with contextlib.suppress(Exception):  # a failure is shown where the result is awaited
        cache.subset_job(model_key, sel)


st.title("Images: which patches survive the threshold")
st.caption(view.page_intro())
models = loaders.usable_image_checkpoints()
for broken in loaders.unusable_image_checkpoints():
    st.warning(
        literal(f"Image checkpoint {broken.name} is unusable and not offered: {broken.error}"),
        icon=":material/error:",
    )
if not models:
    st.warning(
        "No usable image checkpoint in checkpoints/: train one with `python -m tefviz train images "
        "--tokenizer svd_tef --export checkpoints/tefviz-image-svd-tef`."
    )
    st.stop()
labels = view.checkpoint_labels({c.name: c.config for c in models})
name = bound(
    st.radio,
    key("model"),
    models[0].name,
    "Tokenizer",
    list(labels),
    choices=list(labels),
    legacy=legacy("model"),
    format_func=labels.get,
    horizontal=True,
)
model, model_key = guarded(f"Loading {name!r}", loaders.get_image_model, name) or st.stop()  # stop: raises
st.caption(model.tokenizer.description)
left, right = st.columns([1, 2])
with left:
    source, (image, label, original, steps) = input_picker(key)
with right:
    sel, budget = budget_controls(model.tokenizer, model.cfg, key, on_move=start_measuring)
    measure = bound(
        st.toggle,
        key("measure"),
        True,
        "Measure on the 2,000 evaluation images at every new setting",
        legacy=legacy("measure"),
        help="About 1-3 s per new setting on a 2-core CPU (cached after), in a worker process while "
        "the page draws. Turn off to move the budget with no wait; the accuracy star and the flips "
        "then pause.",
    )
    for note in view.input_notes(steps, source == SOURCES[0]):
        st.caption(note)
if image is None:  # the budget widgets above are drawn anyway, so their values survive
    st.stop()
if measure:  # start now (if the slider's callback has not): the worker classifies while this run draws
    start_measuring(sel)
image_key = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
result = guarded("Classifying the image", cache.analysis, model_key, image_key, sel, image) or st.stop()
headline(result, sel, image_key)
tabs = st.tabs(["Accuracy vs tokens", "Error analysis", "Spectrum and SVD (training-free)"])
with tabs[2]:  # drawn first: it needs no measurement, so it is on screen while the worker runs
    training_free_tab(image, original)
with tabs[0]:  # the wait (with its progress bar) sits where the accuracy will appear
    subset = guarded("Evaluating the subset", cache.subset, model_key, sel) if measure else None
    accuracy_tab(budget, subset)
with tabs[1]:
    flips_tab(subset, measure)
