"""Server hardening installed by app.py (ui/hardening.py)."""

from __future__ import annotations

from types import SimpleNamespace

import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg

from ui import hardening


def _frame(text: str) -> bytes:
    msg = BackMsg()
    msg.rerun_script.widget_states.widgets.add(id="own_text", string_value=text)
    return msg.SerializeToString()


def test_a_frame_with_a_lone_surrogate_is_repaired_and_good_frames_are_untouched():
    good = _frame("naïve café \ufffd 日本語")
    assert hardening.repair_backmsg(good) is good
    bad = _frame("a \ufffd b").replace("\ufffd".encode(), b"\xed\xa0\x80")  # as the browser sends it
    repaired = hardening.repair_backmsg(bad)
    msg = BackMsg()
    msg.ParseFromString(repaired)
    assert msg.rerun_script.widget_states.widgets[0].string_value == "a \ufffd b"
    assert len(repaired) == len(bad)


def test_visitors_cannot_clear_every_cache(monkeypatch):
    from streamlit.runtime.app_session import AppSession

    hardening.install()
    hardening.install()  # idempotent
    calls = []

    @st.cache_data
    def expensive(x: int) -> int:
        calls.append(x)
        return x

    expensive(1)
    session = SimpleNamespace(_session_state={"kept": 1})
    AppSession._handle_clear_cache_request(session)
    expensive(1)
    assert calls == [1] and session._session_state == {"kept": 1}
    monkeypatch.setenv("TEFVIZ_ALLOW_CACHE_CLEAR", "1")
    AppSession._handle_clear_cache_request(session)
    expensive(1)
    assert calls == [1, 1] and session._session_state == {}


def test_benchmarks_run_one_at_a_time():
    """A second benchmark request waits for the first, and is told why."""
    import threading
    import time

    from ui.bench import run_one_at_a_time

    order, waits = [], []
    started = threading.Event()

    def first() -> str:
        started.set()
        time.sleep(1.5)
        order.append("first done")
        return "a"

    t = threading.Thread(target=lambda: run_one_at_a_time("implementations at 1024 tokens", first, print))
    t.start()
    started.wait(5)
    result = run_one_at_a_time("methods", lambda: order.append("second ran") or "b", waits.append)
    t.join()
    assert result == "b" and order == ["first done", "second ran"]
    assert waits and "another benchmark (implementations at 1024 tokens)" in waits[0]
