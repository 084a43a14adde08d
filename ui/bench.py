"""A benchmark run from a page: the button, a progress bar, the result kept in the session."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from tefviz.errors import InputError
from ui.errors import show_error

Progress = Callable[[float, str], None]


def benchmark_button(state_key: str, lengths: list, chosen: list, what: str,
                     run: Callable[[Progress], dict]) -> dict | None:
    """Run `run(progress)` when the button is pressed; return the latest result of this session."""
    if st.button("Run the benchmark", icon=":material/timer:", key=f"{state_key}-run"):
        if not lengths or not chosen:
            st.warning(f"Pick at least one length and one {what}.")
        else:
            bar = st.progress(0.0, text="starting…")
            try:
                st.session_state[state_key] = run(lambda f, msg: bar.progress(min(f, 1.0), text=msg))
            except InputError as e:
                show_error("The benchmark cannot run with these settings", e)
            bar.empty()
    return st.session_state.get(state_key)
