"""Figures shared by every session of the server.

Building a plotly figure validates every property in Python: on the Text page its three figures
cost about 200 ms of a 350 ms slider move, the same for every student of a class who moves to the
same setting. `chart` builds a figure once per builder and view for all sessions (figures are only
read afterwards: Streamlit serialises a copy) and draws it. The caller names the view with a short
string (model, text digest, setting...): hashing the inputs themselves with Streamlit's hasher
costs more than building the figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st


def digest(text: str) -> str:
    """A short content key for a long text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


@st.cache_resource(max_entries=512, show_spinner=False)
def _shared_figure(
    name: str, view: str, _builder: Callable[..., go.Figure], _args: tuple, _kwargs: dict
) -> go.Figure:
    return _builder(*_args, **_kwargs)


def chart(builder: Callable[..., go.Figure], *args, view: str, key: str, where=None, **kwargs) -> None:
    """Draw builder(*args, **kwargs) full width in `where` (default: the page). `view` must name
    everything the inputs depend on: the figure is built once per (builder, chart key, view) for the
    whole server. `key` is the page's key for the chart (`<page>.<name>`, ui/state.py `page_keys`).
    Pass a lambda as the builder when the inputs themselves cost time to compute."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    page = ctx.page_script_hash if ctx is not None else ""
    name = f"{page}:{builder.__module__}.{builder.__qualname__}:{key}"  # chart keys are unique per page
    (where or st).plotly_chart(_shared_figure(name, view, builder, args, kwargs), width="stretch", key=key)


class PreparedHtml:
    """HTML built once and shown by many sessions: `st.html` takes an object with `_repr_html_`
    as it is, where a string is first dedented and tried as a file path (a few ms for a token strip
    of 2,000 tokens, on every rerun of every session). The body must already be safe (escaped)."""

    def __init__(self, body: str) -> None:
        self.body = body

    def _repr_html_(self) -> str:
        return self.body
