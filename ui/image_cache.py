"""What the Images page computes, cached once for every session of the server (a class of students
moving the same sliders): the subset, its galleries and tokens, each image's analysis at a setting,
the subset classified at a setting, converted uploads and the training-free spectra.

Models are named by the key `get_image_model` returns (name@weights version), so a re-exported
checkpoint is never served from a stale entry. Model passes run one at a time (ui.compute), the
2,000-image subset in the "long" lane so a slider move never queues behind it.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from tefviz.data.fashion_mnist import CLASSES
from tefviz.images import evaluate, preprocess, view
from tefviz.images.budget import Selection
from tefviz.images.model import ImageClassifier
from ui.compute import one_at_a_time
from ui.loaders import get_image_model
from ui.progress import progress_bar


def _model(model_key: str) -> ImageClassifier:
    return get_image_model(model_key.split("@", 1)[0])[0]


@st.cache_data(max_entries=16, show_spinner="Reading the picture…")
def converted(data: bytes | None, photo: str, invert: str) -> tuple[np.ndarray, tuple, np.ndarray | None]:
    """(model input, conversion steps, greyscale preview) of an upload (`data`) or a natural photo,
    decoded once per picture and inversion."""
    return preprocess.picture_input(data, photo, invert)


@st.cache_resource(show_spinner=False)
def shipped_subset() -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation subset as model input, read once per server (used read-only)."""
    return evaluate.eval_inputs()


@st.cache_resource(max_entries=16, show_spinner=False)
def gallery_png(cls: str) -> bytes:
    """The class's 200 subset images as one PNG, encoded once per server (every session's rerun
    would otherwise re-encode 1,120 x 560 pixels)."""
    return view.class_gallery_png(*shipped_subset(), CLASSES.index(cls))


@st.cache_data(max_entries=512, show_spinner=False)
@one_at_a_time
def analysis(model_key: str, image_key: str, sel: Selection, _image: np.ndarray) -> view.ImageAnalysis:
    """One image (named by `image_key`, its digest) with every token and at `sel`."""
    return view.analyse_image(_model(model_key), _image, sel)


@st.cache_data(max_entries=64, show_spinner=False)
def spectral_summary(view_key: str, _view: torch.Tensor) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The training-free views' energy and explained variance (0.05-0.2 s per view)."""
    return view.spectral_summary(_view)


# the subset's tokens, threshold-free: made once per model and tokenizer budget, shared and read-only
# (2,000 x 64 tokens x 128 floats, 65 MB), so a new t only re-runs the keep rule and the encoder
@st.cache_resource(max_entries=4, show_spinner=False)
def subset_tokens(model_key: str, budget: Selection) -> list:
    return evaluate.tokenize_batches(_model(model_key), shipped_subset()[0], budget)


@st.cache_data(max_entries=256, show_spinner=False)
@one_at_a_time(lane="long")
def subset(model_key: str, sel: Selection) -> evaluate.SubsetResult:
    """The 2,000 evaluation images classified at `sel` (their tokens made once per budget)."""
    with progress_bar("Classifying the 2,000 evaluation images at this setting…") as report:
        tokens = subset_tokens(model_key, sel.tokenizer_part())
        result = evaluate.classify_subset(_model(model_key), shipped_subset()[0], sel, tokens)
        report(1.0)
    return result
