"""What the Images page computes, cached once for every session of the server (a class of students
moving the same sliders): the subset, its galleries and tokens, each image's analysis at a setting,
the subset classified at a setting, converted uploads and the training-free spectra.

Models are named by the key `get_image_model` returns (name@weights version), so a re-exported
checkpoint is never served from a stale entry. Model passes run one at a time (ui.compute); the
2,000-image subset is classified in a worker process, so a slider move never queues behind it.
"""

from __future__ import annotations

from concurrent.futures import Future, wait

import numpy as np
import streamlit as st
import torch

from tefviz.checkpoints import resolve_checkpoint
from tefviz.data.fashion_mnist import CLASSES
from tefviz.images import evaluate, preprocess, view
from tefviz.images.budget import Selection
from tefviz.images.model import ImageClassifier
from tefviz.images.subset_jobs import classify_checkpoint_subset
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.workers import BackgroundWorker
from ui.compute import one_at_a_time
from ui.loaders import get_image_model


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


@st.cache_resource(max_entries=4096, show_spinner=False)
def subset_image_png(index: int, scale: int = 3) -> bytes:
    """Subset image `index` upscaled, encoded once per server (the error analysis shows up to 24
    at each rerun of each session: encoding them was half of an Images rerun under a class)."""
    return view.grey_image_bytes(shipped_subset()[0][index, 0].numpy(), scale)


@st.cache_resource(max_entries=64, show_spinner=False)
def picture_bytes(image_key: str, _image: np.ndarray, scale: int, format: str) -> bytes:
    """The picture named by `image_key` (its digest), upscaled and encoded once per server."""
    return view.grey_image_bytes(_image, scale, format)


@st.cache_data(max_entries=512, show_spinner=False)
@one_at_a_time
def analysis(model_key: str, image_key: str, sel: Selection, _image: np.ndarray) -> view.ImageAnalysis:
    """One image (named by `image_key`, its digest) with every token and at `sel`."""
    return view.analyse_image(_model(model_key), _image, sel)


@st.cache_data(max_entries=64, show_spinner=False)
def spectral_summary(view_key: str, _view: torch.Tensor) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The training-free views' energy and explained variance (0.05-0.2 s per view)."""
    return view.spectral_summary(_view)


# One worker process for every session (tefviz/workers.py says why a process): it keeps the model
# and the subset's tokens, a class asking for the same setting shares one job.
_WORKER = BackgroundWorker(threads="adapt")  # one thread while the class runs, more when idle


def subset_job(model_key: str, sel: Selection) -> Future:
    """The job classifying the 2,000 evaluation images by the model `model_key` names at `sel`
    (started now unless it already ran or runs; a re-exported checkpoint is a new job)."""
    name, version = model_key.split("@", 1)  # get_image_model's key names the weights version
    path, tokenizer = resolve_checkpoint(name), TOKENIZERS.reference(_model(model_key).cfg.tokenizer)
    key = (str(path), version, sel)
    return _WORKER.submit(key, classify_checkpoint_subset, str(path), version, sel, tokenizer)


def subset(model_key: str, sel: Selection) -> evaluate.SubsetResult:
    """The subset classified at `sel`, waiting for the worker with a progress bar. The wait is in
    the page's run, not in a cache, so a move of any widget stops it at once (the job goes on and
    serves whoever asks next)."""
    job = subset_job(model_key, sel)
    if not job.done():
        bar = st.progress(0.0, text=_SUBSET_TEXT)
        while not wait([job], timeout=0.1).done:
            share = _WORKER.progress(job)
            text = _SUBSET_TEXT if share is not None else "Waiting for the worker to finish another setting…"
            bar.progress(share or 0.0, text=text)  # each update also lets Streamlit stop the run
        bar.empty()
    return job.result()


_SUBSET_TEXT = "Classifying the 2,000 evaluation images at this setting…"
