"""The text box of the pages that take a user's text: any length, never lost.

Streamlit's own `max_chars` throws a whole edit away when it is too long (a 1 MB paste left the box
empty), so there is none: the text is cut here, with a notice that says what happened. (A broken
paste with lone surrogates is repaired on its way in, by ui/hardening.py.)
"""

from __future__ import annotations

import streamlit as st

from ui.state import kept_value

KEEP_CHARS = 1_000_000  # what a box keeps of a paste; the pages score far less (each says how much)


def _clean(key: str) -> None:
    text = st.session_state.get(key) or ""
    st.session_state[f"{key}__cut"] = max(0, len(text) - KEEP_CHARS)
    st.session_state[key] = text[:KEEP_CHARS]


def text_box(label: str, key: str, height: int, placeholder: str) -> str:
    """A text area whose value is kept across page visits, cut to KEEP_CHARS with a notice."""
    kept_value(key, "")
    text = st.text_area(label, height=height, key=key, placeholder=placeholder, on_change=_clean, args=(key,))
    cut = st.session_state.get(f"{key}__cut", 0)
    if cut:
        st.warning(f"The pasted text was {KEEP_CHARS + cut:,} characters long: the box keeps the first "
                   f"{KEEP_CHARS:,}.")
    return text
