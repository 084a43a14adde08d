"""The Images page's input widgets: which picture (a subset image, an upload, a photo) and the
tokenizer's budget controls, each bound to the URL. Widgets only; conversion and caching live in
ui/image_cache.py, the budgets are declared by each tokenizer (tefviz/images/budget.py).

The page passes its key namer (`page_keys("images")`): session keys are `images.<name>`, URL names the
bare `<name>`. Links from before page prefixes named them `img_<name>`; those still open the same
view (`legacy`), and the page then publishes the new names."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from tefviz.data.fashion_mnist import CLASSES
from tefviz.images import preprocess
from tefviz.images.budget import Budget, Selection
from tefviz.images.tokenizers import ImageConfig, ImageTokenizer
from ui import image_cache as cache
from ui.errors import guarded
from ui.state import bound

SOURCES = ["Evaluation subset", "Upload", "Natural photo"]
Picked = tuple[np.ndarray | None, int | None, np.ndarray | None, tuple[str, ...]]
Keys = Callable[[str], str]  # the page's key namer, ui.state.page_keys("images")
LEGACY_PREFIX = "img_"  # the Images page's URL names before page prefixes: img_t, img_source, ...


def legacy(name: str) -> str:
    """The URL name an Images link used for `name` before page prefixes (`img_t` for `t`): still read."""
    return f"{LEGACY_PREFIX}{name}"


def input_picker(key: Keys) -> tuple[str, Picked]:
    """The source, and (model input or None, true class or None, the picture or None, conversion steps)."""
    source = bound(
        st.radio,
        key("source"),
        SOURCES[0],
        "Image",
        SOURCES,
        choices=SOURCES,
        legacy=legacy("source"),
        horizontal=True,
        help="2,000 Fashion-MNIST test images the models never saw (200 per class), your own "
        "picture, or a photo from scikit-image for qualitative views.",
    )
    if source == SOURCES[0]:
        cls = bound(
            st.selectbox,
            key("cls"),
            CLASSES[0],
            "Class",
            CLASSES,
            choices=list(CLASSES),
            legacy=legacy("cls"),
        )
        idx = bound(
            st.slider, key("idx"), 0, "Image of that class", 0, 199, lo=0, hi=199, legacy=legacy("idx")
        )
        with st.expander(f"Gallery: the 200 {cls} images (numbered row by row from 0)"):
            st.image(cache.gallery_png(cls), width="stretch")
        (x, y), c = cache.shipped_subset(), CLASSES.index(cls)
        return source, (x[np.flatnonzero(y.numpy() == c)[idx], 0].numpy(), c, None, ())
    invert = bound(
        st.selectbox,
        key("invert"),
        "auto",
        "Invert",
        preprocess.INVERT_MODES,
        choices=preprocess.INVERT_MODES,
        legacy=legacy("invert"),
        help="The model knows light garments on black. 'auto' inverts pictures whose border is light.",
    )
    if source == SOURCES[1]:
        upload = st.file_uploader(preprocess.UPLOAD_LABEL, type=preprocess.UPLOAD_TYPES, key=key("upload"))
        if upload is None:
            st.info("Upload a picture, ideally one garment on a plain background.")
        out = upload and guarded("Reading your image", cache.converted, upload.getvalue(), "", invert)
    else:
        photos = preprocess.natural_photo_names()
        photo = bound(
            st.selectbox,
            key("photo"),
            photos[0],
            "Photo (scikit-image)",
            photos,
            choices=photos,
            legacy=legacy("photo"),
        )
        out = guarded("Converting the photo", cache.converted, None, photo, invert)
    return source, ((out[0], None, out[2], out[1]) if out else (None, None, None, ()))


def budget_controls(
    tokenizer: ImageTokenizer, cfg: ImageConfig, key: Keys, on_move: Callable[[Selection], None] | None = None
) -> tuple[Selection, Budget | None]:
    """The tokenizer's budgets (a radio between several), each a slider or select slider in the URL
    under its Budget.key (URL `t`, session key `images.t`). `on_move(selection)` runs when the user
    moves the budget, before the page's script (Streamlit runs widget callbacks first): the page
    starts its long measurement there instead of after its first half has run."""
    budgets = tokenizer.budgets(cfg)
    if not budgets:
        st.info(tokenizer.no_budget_note)
        return Selection(), None
    modes, mode_name = [b.mode for b in budgets], f"budget_{tokenizer.name}"
    mode = (
        modes[0]
        if len(modes) == 1
        else bound(
            st.radio,
            key(mode_name),
            modes[0],
            tokenizer.budget_title,
            modes,
            choices=modes,
            legacy=legacy(mode_name),
            horizontal=True,
        )
    )
    b = budgets[modes.index(mode)]
    args, kwargs = b.widget_args()
    name = b.key
    value = bound(
        st.select_slider if b.choices else st.slider,
        key(name),
        b.default,
        b.label,
        *args,
        choices=b.choices,
        lo=b.lo,
        hi=b.hi,
        legacy=legacy(name),
        help=b.help,
        **kwargs,
        **({"on_change": _moved, "args": (on_move, b, key(name))} if on_move else {}),
    )
    return b.selection(value), b


def _moved(on_move: Callable[[Selection], None], budget: Budget, session_key: str) -> None:
    on_move(budget.selection(st.session_state[session_key]))
