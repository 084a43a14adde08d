"""Images: which patches a tokenizer keeps at a threshold, and what that costs in accuracy."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import streamlit as st
import torch
from PIL import Image

from tefviz.data.fashion_mnist import CLASSES
from tefviz.images.evaluate import eval_inputs, predict, tokenize_batches
from tefviz.images.model import Selection
from tefviz.images.preprocess import (
    INVERT_MODES,
    MAX_UPLOAD_BYTES,
    SUPPORTED,
    decode_image,
    natural_photo,
    natural_photo_names,
    to_model_input,
)
from tefviz.images.spectral import (
    explained_variance,
    log_magnitude,
    lowpass_reconstruction,
    oriented_svd,
    rank_k_reconstruction,
    square_energy_fractions,
)
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.images.view import ImageAnalysis, analyse_image, flipped, montage, on_grid
from tefviz.viz.image_figures import (
    accuracy_tokens_figure,
    cumulative_figure,
    energy_curve_figure,
    explained_variance_figure,
    image_figure,
    patch_overlay_figure,
    probabilities_figure,
    score_heatmap_figure,
    spectrum_figure,
)
from ui.charts import chart, digest
from ui.compute import one_at_a_time
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.loaders import get_image_model, unusable_image_checkpoints, usable_image_checkpoints
from ui.progress import progress_bar
from ui.routing import through_app
from ui.state import url_publish, url_value

through_app()  # a first visit straight to this page still gets app.py's navigation

st.title("Images: which patches survive the threshold")
st.caption(
    "A tokenizer turns a Fashion-MNIST image (28x28, padded to 32x32) into an 8x8 grid of patch tokens "
    "plus CLS. SVD-TEF learns a gate per patch and keeps patches, highest gate first, while their "
    "cumulative share stays within t; the FFT tokenizer keeps a low-frequency square; exact SVD keeps "
    "singular components; TNT prunes a plain ViT inside the encoder. Move the budget and watch which "
    "tokens go and what the prediction and the accuracy pay."
)

models = usable_image_checkpoints()
for broken in unusable_image_checkpoints():
    st.warning(
        literal(f"Image checkpoint {broken.name} is unusable and not offered: {broken.error}"),
        icon=":material/error:",
    )
if not models:
    st.warning(
        "No usable image checkpoint in checkpoints/: train one with "
        "`python -m tefviz train images --tokenizer svd_tef --export checkpoints/tefviz-image-svd-tef`."
    )
    st.stop()


def _base_label(name: str) -> str:
    cfg = next(c.config for c in models if c.name == name) or {}
    tok = TOKENIZERS.get(cfg.get("tokenizer", ""))
    base = tok.label if tok else name
    return f"{base} + TNT" if cfg.get("tnt_layers") else base


def _label(name: str) -> str:
    """The tokenizer's name, plus the checkpoint's where two checkpoints share a tokenizer."""
    base = _base_label(name)
    clash = sum(_base_label(c.name) == base for c in models) > 1
    return f"{base} ({name})" if clash else base


names = [c.name for c in models]
url_value("img_model", names[0], str, choices=names)
name = st.radio("Tokenizer", names, key="img_model", format_func=_label, horizontal=True)
loaded = guarded(f"Loading {name!r}", get_image_model, name)
if loaded is None:
    st.stop()
model, model_key = loaded
cfg = model.cfg
tokenizer = model.tokenizer
st.caption(tokenizer.description)


@st.cache_data(max_entries=8, show_spinner="Reading the picture…")
def converted_upload(data: bytes, invert: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """(model input, conversion steps, greyscale preview): decoded once per upload and inversion."""
    image, conversion = to_model_input(decode_image(data), invert)
    return image, conversion.steps, conversion.preview


@st.cache_data(max_entries=16, show_spinner=False)
def converted_photo(name: str, invert: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    image, conversion = to_model_input(natural_photo(name), invert)
    return image, conversion.steps, conversion.preview


# --- the input image ----------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def shipped_subset():
    """The evaluation subset as model input, read once per server (used read-only)."""
    return eval_inputs()


subset_x, subset_y = shipped_subset()


@st.cache_resource(max_entries=16, show_spinner=False)
def gallery_png(cls: str) -> bytes:
    """The class's 200 subset images as one PNG, encoded once per server (every session's rerun
    would otherwise re-encode 1,120 x 560 pixels)."""
    members = np.flatnonzero(subset_y.numpy() == CLASSES.index(cls))
    sheet = np.kron(montage(subset_x[members, 0, 2:30, 2:30].numpy(), columns=20), np.ones((2, 2)))
    out = io.BytesIO()
    Image.fromarray((np.clip(sheet, 0, 1) * 255).round().astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()
SOURCES = ["Evaluation subset", "Upload", "Natural photo"]
left, right = st.columns([1, 2])
with left:
    url_value("img_source", SOURCES[0], str, choices=SOURCES)
    source = st.radio(
        "Image",
        SOURCES,
        key="img_source",
        horizontal=True,
        help="2,000 Fashion-MNIST test images the models never saw (200 per class), your own "
        "picture, or a photo from scikit-image for qualitative views.",
    )
    label: int | None = None
    image: np.ndarray | None = None
    original: np.ndarray | None = None
    steps: tuple[str, ...] = ()
    if source == SOURCES[0]:
        url_value("img_cls", CLASSES[0], str, choices=list(CLASSES))
        cls = st.selectbox("Class", list(CLASSES), key="img_cls")
        url_value("img_idx", 0, int, lo=0, hi=199)
        idx = st.slider("Image of that class", 0, 199, key="img_idx")
        members = np.flatnonzero(subset_y.numpy() == CLASSES.index(cls))
        index = int(members[idx])
        image, label = subset_x[index, 0].numpy(), CLASSES.index(cls)
        with st.expander(f"Gallery: the 200 {cls} images (numbered row by row from 0)"):
            st.image(gallery_png(cls), width="stretch")
    else:
        url_value("img_invert", "auto", str, choices=list(INVERT_MODES))
        invert = st.selectbox(
            "Invert",
            list(INVERT_MODES),
            key="img_invert",
            help="The model knows light garments on black. 'auto' inverts pictures whose border is light.",
        )
        if source == SOURCES[1]:
            upload = st.file_uploader(
                f"Your image ({SUPPORTED}; at most {MAX_UPLOAD_BYTES // 2**20} MB)",
                type=["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"],
                key="img_upload",
            )
            if upload is None:
                st.info("Upload a picture, ideally one garment on a plain background.")
            else:
                converted = guarded("Reading your image", converted_upload, upload.getvalue(), invert)
                if converted is not None:
                    image, steps, original = converted
        else:
            photos = natural_photo_names()
            url_value("img_photo", photos[0], str, choices=photos)
            photo = st.selectbox("Photo (scikit-image)", photos, key="img_photo")
            converted = guarded("Converting the photo", converted_photo, photo, invert)
            if converted is not None:
                image, steps, original = converted
url_publish(
    "img_model",
    "img_source",
    *(["img_cls", "img_idx"] if source == SOURCES[0] else ["img_invert"]),
    *(["img_photo"] if source == SOURCES[2] else []),
)
# --- the budget ----------------------------------------------------------------------------------
with right:
    if tokenizer.name in ("svd_tef", "svd_exact"):
        n_tok = cfg.max_tokens if tokenizer.name == "svd_tef" else cfg.image_size
        url_value(f"img_budget_{tokenizer.name}", "threshold t", str, choices=["threshold t", "top-k"])
        budget = st.radio(
            "Budget", ["threshold t", "top-k"], key=f"img_budget_{tokenizer.name}", horizontal=True
        )
        if budget == "threshold t":
            url_value("img_t", 0.8, float, lo=0.0, hi=1.0)
            t = st.slider(
                f"Threshold t (cumulative share of the {tokenizer.score_name} kept)",
                0.0,
                1.0,
                step=0.01,
                key="img_t",
                help="1.0 keeps every token; the top-scored one is always kept.",
            )
            sel = Selection(t=float(t))
            keys = [f"img_budget_{tokenizer.name}", "img_t"]
        else:
            url_value(f"img_k_{tokenizer.name}", n_tok // 2, int, lo=1, hi=n_tok)
            k = st.slider("Keep the top k tokens", 1, n_tok, key=f"img_k_{tokenizer.name}")
            sel = Selection(top_k=int(k))
            keys = [f"img_budget_{tokenizer.name}", f"img_k_{tokenizer.name}"]
    elif tokenizer.name == "fft":
        sides = tokenizer.allowed_sides()
        url_value(f"img_budget_{tokenizer.name}", "fixed side", str, choices=["fixed side", "energy share p"])
        budget = st.radio(
            "Low-pass square",
            ["fixed side", "energy share p"],
            key=f"img_budget_{tokenizer.name}",
            horizontal=True,
        )
        if budget == "fixed side":
            url_value("img_side", sides[-2], int, choices=sides)
            side = st.select_slider("Side s of the kept square of frequencies", sides, key="img_side")
            sel = Selection(fft_side=int(side))
            keys = [f"img_budget_{tokenizer.name}", "img_side"]
        else:
            url_value("img_p", 0.95, float, lo=0.5, hi=1.0)
            p = st.slider(
                "Energy share p: the smallest square holding at least p of the energy",
                0.5,
                1.0,
                step=0.01,
                key="img_p",
            )
            sel = Selection(fft_energy=float(p))
            keys = [f"img_budget_{tokenizer.name}", "img_p"]
    elif cfg.tnt_layers:
        url_value("img_keep", 0.5, float, lo=0.05, hi=1.0)
        rate = st.slider(
            f"TNT keep rate after block {cfg.tnt_layers[0] + 1}",
            0.05,
            1.0,
            step=0.05,
            key="img_keep",
            help="Keep the floor(N x rate) patch tokens the importance head ranks highest; CLS always stays.",
        )
        sel = Selection(tnt_keep=float(rate))
        keys = ["img_keep"]
    else:
        st.info("This ViT has no scores and no TNT heads: every patch is kept.")
        sel, keys = Selection(), []
    if steps:
        st.caption("Converted for the model: " + "; ".join(steps) + ".")
    if source != SOURCES[0]:
        st.caption(
            "The classifiers know only Fashion-MNIST's ten garment classes, seen as light shapes on "
            "black: for other pictures the prediction is a guess, but which patches the tokenizer "
            "keeps is still telling."
        )
url_publish(*keys)
if image is None:  # the budget widgets above are drawn anyway, so their values survive
    st.stop()

image_key = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


@st.cache_data(max_entries=512, show_spinner=False)
@one_at_a_time
def cached_analysis(model_key: str, image_key: str, sel: Selection, _image: np.ndarray) -> ImageAnalysis:
    model, _ = get_image_model(model_key.split("@", 1)[0])
    return analyse_image(model, _image, sel)


@st.cache_data(max_entries=64, show_spinner=False)
def free_energy(view_key: str, _vt: torch.Tensor, sides: tuple[int, ...]) -> np.ndarray:
    return square_energy_fractions(_vt[None], list(sides))[0].numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def free_singular_values(view_key: str, _vt: torch.Tensor) -> torch.Tensor:
    return oriented_svd(_vt)[1]


# the subset's tokens, threshold-free: made once per model and FFT budget, shared and read-only
# (2,000 x 64 tokens x 128 floats, 65 MB), so a new t only re-runs the keep rule and the encoder
@st.cache_resource(max_entries=4, show_spinner=False)
def subset_tokens(model_key: str, budget: tuple) -> list:
    model, _ = get_image_model(model_key.split("@", 1)[0])
    return tokenize_batches(model, subset_x, Selection(**dict(budget)))


@st.cache_data(max_entries=256, show_spinner=False)
@one_at_a_time(lane="long")
def cached_subset(model_key: str, sel: Selection) -> dict:
    model, _ = get_image_model(model_key.split("@", 1)[0])
    with progress_bar("Classifying the 2,000 evaluation images at this setting…") as report:
        tokenized = subset_tokens(model_key, tuple(sorted(sel.budget().items())))
        probs, tokens, final = predict(model, subset_x, sel, tokenized=tokenized)
        report(1.0)
    return {
        "pred": probs.argmax(-1).numpy(),
        "tokens": tokens.float().mean().item(),
        "final": final.float().mean().item(),
    }


result = guarded("Classifying the image", cached_analysis, model_key, image_key, sel, image)
if result is None:
    st.stop()
fig_view = f"{model_key}|{image_key}|{sel}"  # what the figures of this image at this setting depend on

# --- headline --------------------------------------------------------------------------------------
now_label = "at this setting"
m = st.columns(4)
m[0].metric(
    "Tokens kept (CLS included)",
    f"{result.tokens_final if sel.tnt_keep else result.tokens_now} / {result.tokens_all}",
)
m[1].metric(
    "Prediction, all tokens",
    CLASSES[result.prediction_all],
    f"{result.probs_all.max():.0%} sure",
    delta_color="off",
)
m[2].metric(
    f"Prediction {now_label}",
    CLASSES[result.prediction_now],
    f"{result.probs_now.max():.0%} sure",
    delta_color="off",
)
if label is not None:
    m[3].metric(
        "True class",
        CLASSES[label],
        "correct" if result.prediction_now == label else "wrong",
        delta_color="normal" if result.prediction_now == label else "inverse",
    )

# --- what the tokenizer kept -------------------------------------------------------------------------
g = cfg.grid
cols = st.columns(3)
if tokenizer.name == "svd_tef" or (tokenizer.name == "patch" and result.tnt_importance is not None):
    if tokenizer.name == "svd_tef":
        scores, keep, score_name = result.scores, result.keep, "gate g"
    else:
        scores, score_name = result.tnt_importance, "TNT importance"
        keep = result.tnt_keep if result.tnt_keep is not None else np.ones_like(result.keep)
    keep_grid = on_grid(keep, result.positions, g, False)
    score_grid = on_grid(scores, result.positions, g, 0.0)
    chart(patch_overlay_figure, image, keep_grid, score_grid, cfg.patch,
          "Kept (blue) and dropped (red) patches", view=fig_view, key="overlay", where=cols[0])
    chart(score_heatmap_figure, score_grid, keep_grid, score_name, f"Patch scores ({score_name})",
          view=fig_view, key="scores", where=cols[1])
    shares = scores / max(scores.sum(), 1e-12)
    chart(cumulative_figure, shares, keep, sel.t, "Sorted shares and their running sum", view=fig_view,
          key="cumulative", where=cols[2])
elif tokenizer.name == "fft":
    side = int(np.sqrt(result.tokens_now - 1)) * cfg.patch
    image_t = torch.from_numpy(image)
    chart(image_figure, image, "Model input", view=image_key, key="fft_input", where=cols[0])
    spectrum_title = f"log spectrum, kept square {side}x{side}"
    chart(lambda: spectrum_figure(log_magnitude(image_t).numpy(), side, spectrum_title),
          view=fig_view, key="spectrum", where=cols[1])
    chart(lambda: image_figure(lowpass_reconstruction(image_t, side).numpy(),
                               f"Rebuilt from the kept frequencies ({result.tokens_now - 1} tokens) "
                               "and their conjugate partners"),
          view=fig_view, key="lowpass", where=cols[2])
elif tokenizer.name == "svd_exact":
    kept_k = int(result.keep.sum())
    chart(image_figure, image, "Model input", view=image_key, key="svd_input", where=cols[0])
    chart(lambda: image_figure(rank_k_reconstruction(torch.from_numpy(image), kept_k).numpy(),
                               f"Rank-{kept_k} reconstruction (the kept components)"),
          view=fig_view, key="rank_k", where=cols[1])
    chart(cumulative_figure, result.scores, result.keep, sel.t, "Explained variance, sorted",
          "singular components", view=fig_view, key="svd_cumulative", where=cols[2])
else:
    chart(image_figure, image, "Model input", view=image_key, key="plain_input", where=cols[0])

left, right = st.columns([2, 1])
chart(probabilities_figure, CLASSES, result.probs_all, result.probs_now, now_label, label,
      view=f"{fig_view}|{label}", key="probs", where=left)
with right:
    if original is not None:
        st.image(np.clip(original, 0, 1), caption="Your picture (greyscale)", width="stretch")
    st.image(np.kron(image, np.ones((6, 6))), caption="What the model sees (32x32, upscaled)", clamp=True)

download_buttons(
    {
        "classes": list(CLASSES),
        "probabilities_all_tokens": result.probs_all.tolist(),
        "probabilities_now": result.probs_now.tolist(),
        "tokens_now": result.tokens_now,
        "tokens_all": result.tokens_all,
        "tokens_after_tnt": result.tokens_final,
        "scores": None if result.scores is None else result.scores.tolist(),
        "kept": result.keep.tolist(),
        "tnt_importance": None if result.tnt_importance is None else result.tnt_importance.tolist(),
        "kept_after_tnt": None if result.tnt_keep is None else result.tnt_keep.tolist(),
        "positions": result.positions.tolist(),
    },
    "image_tokens",
    "image_export",
)


# --- accuracy vs tokens on the evaluation subset -------------------------------------------------------
url_value("img_measure", True)
measure = st.toggle(
    "Measure on the 2,000 evaluation images at every new setting",
    key="img_measure",
    help="About 1-3 s per new setting on a 2-core CPU (cached after); the image above is re-drawn first. "
    "Turn off to move the budget with no wait; the accuracy star and the flips then pause.",
)
url_publish("img_measure")
subset = guarded("Evaluating the subset", cached_subset, model_key, sel) if measure else None
tab_acc, tab_flip, tab_free = st.tabs(
    ["Accuracy vs tokens", "Error analysis", "Spectrum and SVD (training-free)"]
)
with tab_acc:
    curves: dict[str, list[tuple[float, float, str]]] = {}
    for c in models:
        table = (c.card or {}).get("evaluation")
        if not table:
            continue
        rows = table["rows"]
        every = next((r for r in rows if r["setting"] == "all"), None)
        for kind in sorted({r["setting"] for r in rows} - {"all"}):
            pts = [(r["mean_tokens"], r["accuracy"], r["label"]) for r in rows if r["setting"] == kind]
            if every:
                pts.append((every["mean_tokens"], every["accuracy"], "all tokens"))
            curves[
                f"{_label(c.name)} · {next(r['label'] for r in rows if r['setting'] == kind).split(' =')[0]}"
            ] = pts
        if len({r["setting"] for r in rows}) == 1 and every:
            curves[_label(c.name)] = [(every["mean_tokens"], every["accuracy"], "all tokens")]
    current = {}
    if subset is not None:
        acc = float((subset["pred"] == subset_y.numpy()).mean())
        layer = cfg.tnt_layers[0] + 1 if cfg.tnt_layers else cfg.depth
        tokens = (subset["tokens"] * layer + subset["final"] * (cfg.depth - layer)) / cfg.depth
        mine = [k for k in curves if k.startswith(_label(name))]
        kind = {
            "t": "t",
            "top_k": "top-k",
            "fft_side": "side",
            "fft_energy": "energy p",
            "tnt_keep": "TNT keep",
        }
        want = next(
            (
                kind[f]
                for f in ("t", "top_k", "fft_side", "fft_energy", "tnt_keep")
                if getattr(sel, f) is not None
            ),
            None,
        )
        target = next((k for k in mine if want and k.endswith(want)), mine[0] if mine else _label(name))
        current[target] = (tokens, acc)
        curves.setdefault(target, [])
        st.caption(
            f"At this setting {_label(name)} classifies **{acc:.1%}** of the 2,000 evaluation images "
            f"correctly with **{tokens:.1f}** tokens on average (a star marks it)."
        )
    if curves:
        chart(accuracy_tokens_figure, curves, current, key="acc_tokens",  # the curves come from the cards
              view=digest(json.dumps([curves, current], sort_keys=True, default=str)))
        st.caption(
            "Lines: the table `python -m tefviz eval images --write-cards` stored in each checkpoint's "
            "card. TNT's token count is averaged over the encoder blocks (it prunes inside)."
        )
        download_buttons(
            [
                {"curve": k, "tokens": p[0], "accuracy": p[1], "setting": p[2]}
                for k, pts in curves.items()
                for p in pts
            ],
            "accuracy_vs_tokens",
            "acc_export",
        )
    else:
        st.info(
            "No evaluation table in the checkpoint cards yet: run "
            "`python -m tefviz eval images --write-cards`."
        )


def _open_subset_image(i: int) -> None:
    """Button callback (runs before the rerun, so it may set the widgets' values)."""
    labels = subset_y.numpy()
    st.session_state["img_source"] = SOURCES[0]
    st.session_state["img_cls"] = CLASSES[labels[i]]
    st.session_state["img_idx"] = int(np.flatnonzero(labels[:i] == labels[i]).size)


# --- error analysis: predictions that flip -------------------------------------------------------------
with tab_flip:
    if not measure:
        st.info("Turn on the measurement above to see which evaluation images flip at this setting.")
    full = (
        guarded("Evaluating the subset with every token", cached_subset, model_key, Selection())
        if measure
        else None
    )
    if subset is not None and full is not None:
        labels = subset_y.numpy()
        flips = flipped(full["pred"], subset["pred"], labels)
        f = st.columns(3)
        f[0].metric("Broken (right with all tokens, wrong now)", len(flips["broken"]))
        f[1].metric("Fixed (wrong with all tokens, right now)", len(flips["fixed"]))
        f[2].metric("Wrong either way, different answer", len(flips["still_wrong"]))
        group = st.radio(
            "Show",
            ["broken", "fixed", "still_wrong"],
            horizontal=True,
            key="img_flip_group",
            format_func=lambda s: s.replace("_", " "),
        )
        shown = flips[group][:24]
        if len(shown) == 0:
            st.info("No evaluation image falls in this group at this setting.")
        grid = st.columns(8)
        for j, i in enumerate(shown):
            with grid[j % 8]:
                change = f"{CLASSES[full['pred'][i]]} → {CLASSES[subset['pred'][i]]}"
                st.image(
                    np.kron(subset_x[i, 0].numpy(), np.ones((3, 3))),
                    clamp=True,
                    caption=f"{CLASSES[labels[i]]}: {change}",
                )
                st.button(
                    "Open",
                    key=f"open_{i}",
                    on_click=_open_subset_image,
                    args=(int(i),),
                    help="Show this image above",
                )
        if len(flips[group]) > 24:
            st.caption(f"First 24 of {len(flips[group])}.")

# --- training-free views ---------------------------------------------------------------------------------
with tab_free:
    # the picture itself when it has more detail than the model input (as a 128x128 square), else the input
    use_original = original is not None and min(original.shape) > cfg.image_size
    view = image
    if use_original:
        side_px = min(original.shape)
        top, lft = (original.shape[0] - side_px) // 2, (original.shape[1] - side_px) // 2
        crop = (original[top : top + side_px, lft : lft + side_px] * 255).astype(np.uint8)
        view = np.asarray(Image.fromarray(crop).resize((128, 128), Image.LANCZOS), dtype=np.float32) / 255
    vt = torch.from_numpy(np.ascontiguousarray(view))
    n = view.shape[0]
    free_view = hashlib.sha1(vt.numpy().tobytes()).hexdigest()
    st.caption(
        f"On the {'picture (greyscale, centre square resized to 128x128)' if use_original else 'model input'}"
        ": what the FFT tokenizer's square and exact SVD's components keep, with no model."
    )
    a, b = st.columns(2)
    with a:
        sides_free = list(range(2, n + 1, 2))
        url_value(f"img_free_side_{n}", n // 2, int, choices=sides_free)  # one setting per view size
        s_free = st.select_slider("Low-pass side", sides_free, key=f"img_free_side_{n}")
        energy = free_energy(free_view, vt, tuple(sides_free))
        inside = f"log spectrum: {energy[sides_free.index(s_free)]:.1%} of the energy inside"
        chart(lambda: spectrum_figure(log_magnitude(vt).numpy(), s_free, inside),
              view=f"{free_view}|{s_free}", key="free_spectrum")
        chart(lambda: image_figure(lowpass_reconstruction(vt, s_free).numpy(),
                                   "Low-pass reconstruction (the square and its conjugate partners)"),
              view=f"{free_view}|{s_free}", key="free_lowpass")
        chart(energy_curve_figure, sides_free, energy, s_free, "Energy inside the square",
              view=f"{free_view}|{s_free}", key="free_energy")
    with b:
        s_vals = free_singular_values(free_view, vt)
        url_value(f"img_free_k_{n}", 4, int, lo=1, hi=n)
        k_free = st.slider("Rank k", 1, n, key=f"img_free_k_{n}")
        ev = explained_variance(s_vals).numpy()
        chart(lambda: image_figure(rank_k_reconstruction(vt, k_free).numpy(),
                                   f"Rank-{k_free} reconstruction: {ev[:k_free].sum():.1%} of the variance"),
              view=f"{free_view}|{k_free}", key="free_rank")
        chart(lambda: image_figure((vt - rank_k_reconstruction(vt, k_free)).numpy(), "What rank k misses",
                                   signed=True),
              view=f"{free_view}|{k_free}", key="free_residual")
        chart(explained_variance_figure, ev, k_free, "Explained variance per component",
              view=f"{free_view}|{k_free}", key="free_ev")
url_publish(f"img_free_side_{n}", f"img_free_k_{n}")
