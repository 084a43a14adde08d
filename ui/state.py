"""Shareable page state: a page's choices live in the URL query string.

Usage, per widget:  default = url_value("t", 0.9, float); st.slider(..., value=default, key="t")
then url_publish("t", ...) once the widgets are drawn. A link copied from the
address bar reopens the same view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")


def url_value(key: str, default: T, parse: Callable[[str], T] | None = None,
              choices: Sequence[T] | None = None, lo: float | None = None,
              hi: float | None = None) -> T:
    """Seed widget `key` from the URL (once per session); invalid URL values fall back to default.

    Returns the value the widget should start from. The widget must use the same key.
    """
    if key in st.session_state:
        return st.session_state[key]
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            value = (parse or type(default))(raw)
        except (TypeError, ValueError):
            value = default
        if choices is not None and value not in choices:
            value = default
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            value = default
    st.session_state[key] = value
    return value


def url_publish(*keys: str, omit_default: dict[str, Any] | None = None) -> None:
    """Write the current widget values of `keys` into the URL query string."""
    omit_default = omit_default or {}
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        if key in omit_default and value == omit_default[key]:
            st.query_params.pop(key, None)
        else:
            st.query_params[key] = str(value)
