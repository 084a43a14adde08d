"""Progress bars for long work: a callback that drives st.progress, removed when done.

Inside an st.cache_data function, open the bar *inside* the function: Streamlit
replays a cached call's element messages on a hit, and a bar created outside
cannot be found then (CacheReplayClosureError). Replayed, the bar is drawn and
cleared at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st


@contextmanager
def progress_bar(text: str) -> Iterator[Callable[[float], None]]:
    bar = st.progress(0.0, text=text)
    try:
        yield lambda f: bar.progress(min(max(f, 0.0), 1.0), text=text)
    finally:
        bar.empty()
