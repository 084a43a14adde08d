"""Cached loaders: one model object per (name, kind, attention, weights version), shared by
every browser session of the server.

Models are used read-only under torch.no_grad(); anything that installs hooks or
changes weights must copy first or take MODEL_LOCK. The weights version in the key
means a re-exported checkpoint is picked up without restarting the server.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import streamlit as st

from tefviz.checkpoints import (
    CheckpointInfo,
    checkpoint_version,
    checkpoints_root,
    list_checkpoints,
    resolve_checkpoint,
)
from tefviz.images.checkpoint import load_image_classifier
from tefviz.images.model import ImageClassifier
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.lm import SUPPORTED
from tefviz.models import LoadedLM, load_checkpoint, load_from_hub
from tefviz.text.tef import TEFHeads, tef_checkpoint_lm

MODEL_LOCK = threading.Lock()
DEFAULT_LM = "tefviz-lm"
LM_TYPES = SUPPORTED  # the architectures the intervention layer (tefviz.lm) knows
ARCHITECTURES_TEXT = ", ".join(SUPPORTED)
NO_LM = (
    "No usable language-model checkpoint in checkpoints/ (Home lists what is wrong with each). "
    f"Supported architectures: {ARCHITECTURES_TEXT}."
)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _cached_lm(name: str, kind: str, attention: str, version: str) -> LoadedLM:
    if kind == "hub":
        return load_from_hub(name, attention)  # type: ignore[arg-type]
    return load_checkpoint(name, attention)  # type: ignore[arg-type]


def get_lm(name: str, kind: Literal["checkpoint", "hub"] = "checkpoint", attention: str = "sdpa") -> LoadedLM:
    """The cached model: checkpoints only from inside checkpoints/, hub names only from the hub."""
    version = checkpoint_version(resolve_checkpoint(name)) if kind == "checkpoint" else ""
    return _cached_lm(name, kind, attention, version)


# a resource (one shared, read-only list), not data: every widget run reads it several times, and
# unpickling the cards (held-out tables included) each time cost more than the rest of a Text move
@st.cache_resource(ttl=30, show_spinner=False)
def _checkpoints_in(root: str) -> tuple[CheckpointInfo, ...]:
    return tuple(list_checkpoints(Path(root)))


def cached_checkpoints() -> list[CheckpointInfo]:
    """The checkpoints under the current root (re-read at most every 30 s)."""
    return list(_checkpoints_in(str(checkpoints_root())))


def usable_lm_names() -> list[str]:
    """Checkpoints that load as causal LMs of a supported architecture: the embedded default
    first, then the others by name (a second embedded model appears as soon as it lands)."""
    names = [
        c.name
        for c in cached_checkpoints()
        if c.usable and c.kind == "lm" and (c.config or {}).get("model_type") in LM_TYPES
    ]
    return sorted(names, key=lambda n: (n != DEFAULT_LM, n))


def usable_tef_checkpoints() -> list[CheckpointInfo]:
    """TEF checkpoints that pass validation (their cards say variant and base model)."""
    return [c for c in cached_checkpoints() if c.usable and c.kind == "tef"]


def unusable_tef_checkpoints() -> list[CheckpointInfo]:
    return [c for c in cached_checkpoints() if not c.usable and c.kind == "tef"]


@st.cache_resource(show_spinner="Loading TEF heads…", max_entries=8)
def _cached_tef(name: str, version: str) -> TEFHeads:
    heads = TEFHeads.load(resolve_checkpoint(name))
    heads.cache_key = f"{name}@{version}"  # how cached functions key them (ui/cache_keys.py)
    return heads


def get_tef(name: str) -> tuple[TEFHeads, str, str]:
    """(heads, the checkpoint whose LM they run on, weights version), from inside checkpoints/."""
    path = resolve_checkpoint(name)
    version = checkpoint_version(path)
    return _cached_tef(name, version), tef_checkpoint_lm(path).name, version


def tef_base(info: CheckpointInfo) -> str | None:
    """The LM checkpoint a TEF checkpoint's heads were trained on (`base` in its tef.json; the
    card's `base_model` for older exports)."""
    return (info.tef or {}).get("base") or (info.card or {}).get("base_model")


SHARED_LM = "lm"  # the shared choice (ui/state.py) under which the picked model follows the user


def lm_picker(key: str, where=None, default: str | None = None, help: str = "") -> str | None:
    """The model picker of every page that studies a language model: each usable checkpoint, the
    embedded default first (or `default`). `key` is the page's session key for it (`<page>.model`);
    the choice is kept in the URL under its bare name, and it follows the user to the other model
    pages (the shared choice SHARED_LM). An unknown name in a link falls back to the default with
    the page's link notice. None (with a warning) when there is no usable checkpoint."""
    from ui.state import bound

    names = usable_lm_names()
    if not names:
        st.warning(NO_LM)
        return None
    return bound(
        (where or st).selectbox,
        key,
        default if default in names else names[0],
        "Model",
        names,
        parse=str,
        choices=names,
        shared=SHARED_LM,
        help=f"Language-model checkpoints in checkpoints/ ({ARCHITECTURES_TEXT}). {help}",
    )


def lm_or_stop(name: str | None) -> LoadedLM:
    """The picked checkpoint, loaded; a clear message and a stopped page otherwise."""
    from ui.errors import guarded

    if name is None:
        st.stop()
    lm = guarded(f"Loading {name!r}", get_lm, name)
    if lm is None:
        st.stop()
    return lm


def usable_image_checkpoints() -> list[CheckpointInfo]:
    """Image classifiers that pass validation, SVD-TEF first (the page's default)."""
    order = {name: i for i, name in enumerate(TOKENIZERS.names())}  # the tokenizers' `order`
    found = [c for c in cached_checkpoints() if c.usable and c.kind == "image"]
    return sorted(found, key=lambda c: (order.get((c.config or {}).get("tokenizer", ""), len(order)), c.name))


def unusable_image_checkpoints() -> list[CheckpointInfo]:
    return [c for c in cached_checkpoints() if not c.usable and c.kind == "image"]


@st.cache_resource(show_spinner="Loading image model…", max_entries=8)
def _cached_image_model(name: str, version: str) -> ImageClassifier:
    return load_image_classifier(resolve_checkpoint(name))  # on the device policy's device, fp32


def get_image_model(name: str) -> tuple[ImageClassifier, str]:
    """(classifier, cache key naming its weights version), only from inside checkpoints/."""
    version = checkpoint_version(resolve_checkpoint(name))
    return _cached_image_model(name, version), f"{name}@{version}"
