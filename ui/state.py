"""Shareable page state: a page's choices live in the URL query string.

Per widget, one call:    t = bound(st.slider, "t", 0.9, "Threshold t", 0.0, 1.0, lo=0.0, hi=1.0)
(seed from the link, draw, publish; `url_value` and `url_publish` are its two halves).
A link copied from the address bar reopens the same view. Choices also survive a
visit to another page: Streamlit drops widget state and the query string when the
page changes, so a copy is kept under a private key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
_KEEP = "_url_state_"
_NOTICE = "_url_notice_slot_"
_IGNORED = "_url_ignored_"


def url_notice_slot() -> None:
    """A place at the top of the page where url_value says which values of a link it did not use
    (called by ui.routing.through_app, first thing on every page)."""
    st.session_state[_NOTICE] = st.empty()
    st.session_state[_IGNORED] = {}


def _ignored(key: str, raw: str, why: str) -> None:
    from ui.errors import literal

    ignored = st.session_state.setdefault(_IGNORED, {})
    ignored[key] = f"{key}={raw[:60]} ({why})"
    slot = st.session_state.get(_NOTICE)
    if slot is not None:
        slot.info(
            literal(
                "Not used from the link: " + "; ".join(ignored.values()) + ". The defaults are shown instead."
            ),
            icon=":material/link_off:",
        )


def _why_invalid(value: Any, choices: Sequence | None, lo: float | None, hi: float | None) -> str:
    if choices is not None and value not in choices:
        return "not one of the choices"
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    return f"outside {lo:g} to {hi:g}" if lo is not None and hi is not None else "out of range"


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _same_kind(value: Any, default: Any) -> bool:
    """A kept value from another page that used the same key for something else is not ours."""
    if default is None or type(value) is type(default):
        return True
    return isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)


def _valid(value: Any, choices: Sequence | None, lo: float | None, hi: float | None) -> bool:
    if choices is not None and value not in choices:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return False
    return True


def url_value(
    key: str,
    default: T,
    parse: Callable[[str], T] | None = None,
    choices: Sequence[T] | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> T:
    """Seed widget `key` (once per session and page visit) from the URL, else from the value
    kept from an earlier visit, else `default`; invalid values fall back to `default`.

    The widget must use the same key and no `value=` argument. A value already in the session
    that the current choices or bounds no longer allow (another model with fewer layers or heads,
    a checkpoint that went away) falls back to `default` before the widget is drawn.
    """
    if key in st.session_state:
        value = st.session_state[key]
        if not _valid(value, choices, lo, hi):
            value = default
        # Set through the Session State API even when unchanged: a widget whose options changed
        # (another model, another page's list) is a new widget to Streamlit and would otherwise
        # start again from its first option.
        st.session_state[key] = value
        return value
    parser = parse or (_parse_bool if isinstance(default, bool) else type(default))
    value = default
    raw = st.query_params.get(key)
    kept = st.session_state.get(_KEEP, {}).get(key)
    if raw is not None:
        try:
            value = parser(raw)
        except (TypeError, ValueError):
            value = default
            _ignored(key, raw, "not a valid value")
        else:
            if not _valid(value, choices, lo, hi):
                _ignored(key, raw, _why_invalid(value, choices, lo, hi))
    elif kept is not None:
        value = kept
    if not _same_kind(value, default) or not _valid(value, choices, lo, hi):
        value = default
    st.session_state[key] = value
    return value


def url_publish(*keys: str) -> None:
    """Write the current widget values of `keys` into the URL and keep a copy for later visits."""
    kept = st.session_state.setdefault(_KEEP, {})
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        st.query_params[key] = str(value)
        kept[key] = value


def bound(
    widget: Callable[..., T],
    key: str,
    default: Any,
    *args: Any,
    parse: Callable[[str], Any] | None = None,
    choices: Sequence | None = None,
    lo: float | None = None,
    hi: float | None = None,
    **kwargs: Any,
) -> T:
    """A widget bound to the URL in one call: seed `key` from the link (or a kept value, or
    `default`), draw `widget(*args, key=key, **kwargs)`, publish its value back.

        t = bound(st.slider, "t", 0.9, "Threshold t", 0.0, 1.0, lo=0.0, hi=1.0, step=0.01)
        name = bound(st.selectbox, "sample", names[0], "Text", names, choices=names)

    A widget that is not drawn in a run is not published: what a link carries is what the page shows.
    """
    url_value(key, default, parse, choices=choices, lo=lo, hi=hi)
    value = widget(*args, key=key, **kwargs)
    url_publish(key)
    return value


def kept_value(key: str, default: T) -> T:
    """Like url_value for state too long for a URL (typed text): kept across page visits only."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(_KEEP, {}).get(key, default)
    return st.session_state[key]


def keep(*keys: str) -> None:
    """Keep widget values (not in the URL) for the next visit to this page."""
    kept = st.session_state.setdefault(_KEEP, {})
    for key in keys:
        if key in st.session_state:
            kept[key] = st.session_state[key]
