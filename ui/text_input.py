"""The text box of the pages that take a user's text: any length, never lost; and the one
"sample or your own text" picker those pages share.

Streamlit's own `max_chars` throws a whole edit away when it is too long (a 1 MB paste left the box
empty), so there is none: the text is cut here, with a notice that says what happened. (A broken
paste with lone surrogates is repaired on its way in, by ui/hardening.py.)
"""

from __future__ import annotations

import contextlib

import streamlit as st

from ui.state import bound, keep, kept_value

KEEP_CHARS = 1_000_000  # what a box keeps of a paste; the pages score far less (each says how much)
OWN_TEXT = "your own text"


def _clean(key: str) -> None:
    text = st.session_state.get(key) or ""
    st.session_state[f"{key}__cut"] = max(0, len(text) - KEEP_CHARS)
    st.session_state[key] = text[:KEEP_CHARS]


def text_box(label: str, key: str, height: int, placeholder: str) -> str:
    """A text area under the page's session key `key` whose value is kept across visits to the page,
    cut to KEEP_CHARS with a notice."""
    kept_value(key, "")
    text = st.text_area(label, height=height, key=key, placeholder=placeholder, on_change=_clean, args=(key,))
    cut = st.session_state.get(f"{key}__cut", 0)
    if cut:
        st.warning(
            f"The pasted text was {KEEP_CHARS + cut:,} characters long: the box keeps the first "
            f"{KEEP_CHARS:,}."
        )
    return text


def text_source(
    samples: dict[str, str],
    key: str,
    box_key: str,
    *,
    height: int,
    help: str,
    placeholder: str,
    right=None,
    label: str = "Text",
) -> tuple[str, str]:
    """(choice, text): a shipped sample by name (the page's session key `key`, e.g. `text.sample`,
    kept in the URL under its bare name) or the user's own text (a box under the page's `box_key`,
    kept across page visits, never in the URL). The box, or the sample's first characters, go in the
    container `right` (default: where the picker is)."""
    choices = [*samples, OWN_TEXT]
    sample = bound(st.selectbox, key, next(iter(samples)), label, choices, choices=choices, help=help)
    with right if right is not None else contextlib.nullcontext():
        if sample == OWN_TEXT:
            text = text_box("Your text", box_key, height, placeholder)
        else:
            text = samples[sample]
            with st.expander(f"Sample text: {sample}"):
                st.text(text[:3000] + ("…" if len(text) > 3000 else ""))
    keep(box_key)
    return sample, text
