"""A benchmark run from a page: the button, a progress bar, the result kept in the session.

Benchmarks run one at a time per server: they take minutes and all the cores, and two at once
would slow every user and spoil each other's timings. A second request waits in line, with its
progress bar saying for what.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from tefviz.errors import InputError
from ui.errors import show_error

Progress = Callable[[float, str], None]
T = TypeVar("T")

_LOCK = threading.Lock()
_running: dict = {"what": "", "since": 0.0}


def run_one_at_a_time(what: str, run: Callable[[], T], on_wait: Callable[[str], None]) -> T:
    """run() once no other benchmark of this server is running; on_wait(message) about once a
    second while waiting."""
    while not _LOCK.acquire(timeout=1.0):
        on_wait(
            f"Waiting: another benchmark ({_running['what']}) has been running on this server for "
            f"{time.time() - _running['since']:.0f} s; benchmarks run one at a time so that their "
            "timings are honest."
        )
    _running.update(what=what, since=time.time())
    try:
        return run()
    finally:
        _LOCK.release()


def benchmark_button(
    state_key: str, lengths: list, chosen: list, what: str, run: Callable[[Progress], dict]
) -> dict | None:
    """Run `run(progress)` when the button is pressed; return the latest result of this session.
    `state_key` is the page's key for the result (e.g. `attention.bench_result`); the button's key
    is derived from it."""
    if st.button("Run the benchmark", icon=":material/timer:", key=f"{state_key}-run"):
        if not lengths or not chosen:
            st.warning(f"Pick at least one length and one {what}.")
        else:
            bar = st.progress(0.0, text="starting…")
            try:
                st.session_state[state_key] = run_one_at_a_time(
                    f"{what}s at {', '.join(str(n) for n in lengths)} tokens",
                    lambda: run(lambda f, msg: bar.progress(min(f, 1.0), text=msg)),
                    lambda msg: bar.progress(0.0, text=msg),
                )
            except InputError as e:
                show_error("The benchmark cannot run with these settings", e)
            bar.empty()
    return st.session_state.get(state_key)
