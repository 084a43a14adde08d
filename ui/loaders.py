"""Cached loaders: one model object per (source, attention) shared by every browser session.

Models are used read-only under torch.no_grad(); anything that installs hooks or
changes weights must copy first or take MODEL_LOCK.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from tefviz.checkpoints import CheckpointInfo, checkpoints_root, list_checkpoints
from tefviz.models import LoadedLM, load_causal_lm

MODEL_LOCK = threading.Lock()
DEFAULT_LM = "tefviz-lm"


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_lm(source: str, attention: str = "sdpa") -> LoadedLM:
    return load_causal_lm(source, attention=attention)  # type: ignore[arg-type]


@st.cache_data(ttl=30, show_spinner=False)
def _checkpoints_in(root: str) -> list[CheckpointInfo]:
    return list_checkpoints(Path(root))


def cached_checkpoints() -> list[CheckpointInfo]:
    """The checkpoints under the current root (re-read at most every 30 s)."""
    return _checkpoints_in(str(checkpoints_root()))


def usable_lm_names() -> list[str]:
    """Checkpoints that load as causal LMs, the embedded default first."""
    names = [c.name for c in cached_checkpoints()
             if c.usable and (c.config or {}).get("model_type") in {"gpt2", "gpt_neox", "llama"}]
    return sorted(names, key=lambda n: (n != DEFAULT_LM, n))
