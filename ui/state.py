"""Shareable page state: a page's choices live in the URL query string.

Keys: a page names every key it uses (widgets, buttons, charts, downloads) through its own namer,
`key = page_keys("text")`, so `key("t") == "text.t"`. That is the session-state key, unique to the
page: the same name on two pages is two values. The URL query parameter is the bare name, `t`
(`url_name`): a link opens one page, so its names need no prefix, and every older link still works.

Per widget, one call:    t = bound(st.slider, key("t"), 0.9, "Threshold t", 0.0, 1.0, lo=0.0, hi=1.0)
(seed from the link, draw, publish; `url_value` and `url_publish` are its two halves).
A link copied from the address bar reopens the same view. Choices also survive a
visit to another page: Streamlit drops widget state and the query string when the
page changes, so a copy is kept under a private key, per session key. A URL parameter that was
renamed keeps its old links working with `legacy=` (the old name is read when the new one is absent,
and the value is published under the new name). The one choice meant to follow the user from page to
page, the language model, says so with `shared=` (see `url_value`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
_KEEP = "_url_state_"
_SHARED = "_url_shared_"
_NOTICE = "_url_notice_slot_"
_IGNORED = "_url_ignored_"
_SEP = "."


def page_keys(page: str) -> Callable[[str], str]:
    """The namer of one page's keys: `key = page_keys("text")`, then `key("t") == "text.t"`.

    Every key the page uses goes through it (bound widgets, plain widget keys, buttons, charts,
    downloads), and helpers in ui/ take the named key from the page. Session state, and the copy
    kept for the next visit, are keyed by `<page>.<name>`; the URL carries the bare `<name>`."""
    if not page or _SEP in page:
        raise ValueError(f"a page prefix must be a non-empty name without {_SEP!r}: {page!r}")

    def key(name: str) -> str:
        return f"{page}{_SEP}{name}"

    return key


def url_name(key: str) -> str:
    """The URL query parameter of session key `key`: its name without the page prefix
    ("text.t" -> "t"; a key without a prefix is its own name)."""
    return key.partition(_SEP)[2] or key


def url_notice_slot() -> None:
    """A place at the top of the page where url_value says which values of a link it did not use
    (called by ui.routing.through_app, first thing on every page)."""
    st.session_state[_NOTICE] = st.empty()
    st.session_state[_IGNORED] = {}


def _ignored(name: str, raw: str, why: str) -> None:
    """Name a value of the link that was not used: `name` as the link spells it (the URL name)."""
    from ui.errors import literal

    ignored = st.session_state.setdefault(_IGNORED, {})
    ignored[name] = f"{name}={raw[:60]} ({why})"
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


def _valid(value: Any, choices: Sequence | None, lo: float | None, hi: float | None) -> bool:
    if choices is not None and value not in choices:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return False
    return True


def _from_link(key: str, legacy: str | None) -> tuple[str, str | None]:
    """(the URL name the link used, its raw value or None): the URL name of `key`, else the old
    name `legacy`. An old name is taken out of the URL: the value is published under the new one."""
    name = url_name(key)
    raw = st.query_params.get(name)
    if legacy is not None and legacy in st.query_params:
        old = st.query_params[legacy]
        del st.query_params[legacy]
        if raw is None:
            return legacy, old
    return name, raw


def url_value(
    key: str,
    default: T,
    parse: Callable[[str], T] | None = None,
    choices: Sequence[T] | None = None,
    lo: float | None = None,
    hi: float | None = None,
    *,
    legacy: str | None = None,
    shared: str | None = None,
) -> T:
    """Seed widget `key` (a session key, `<page>.<name>`; once per session and page visit) from the
    link's `<name>` (or its old name `legacy`), else from the value kept from an earlier visit, else
    `default`; invalid values fall back to `default`.

    The widget must use the same key and no `value=` argument. A value already in the session
    that the current choices or bounds no longer allow (another model with fewer layers or heads,
    a checkpoint that went away) falls back to `default` before the widget is drawn.

    `shared` names a choice that follows the user across pages (the language model): when the link
    does not set it, the latest value any page published under that shared name comes first, before
    this page's kept value, if it is one of this page's `choices` (required with `shared`). Nothing
    else is shared between pages.
    """
    if shared is not None and choices is None:
        raise ValueError(f"{key}: a shared choice needs `choices` (another page's value is checked)")
    if key in st.session_state:
        value = st.session_state[key]
        if not _valid(value, choices, lo, hi):
            value = default
        # Set through the Session State API even when unchanged: a widget whose options changed
        # (another model, another tokenizer's list) is a new widget to Streamlit and would otherwise
        # start again from its first option.
        st.session_state[key] = value
        return value
    parser = parse or (_parse_bool if isinstance(default, bool) else type(default))
    value = default
    name, raw = _from_link(key, legacy)
    if raw is not None:
        try:
            value = parser(raw)
        except (TypeError, ValueError):
            value = default
            _ignored(name, raw, "not a valid value")
        else:
            if not _valid(value, choices, lo, hi):
                _ignored(name, raw, _why_invalid(value, choices, lo, hi))
                value = default
    else:
        earlier = [st.session_state.get(_KEEP, {}).get(key)]
        if shared is not None:
            earlier.insert(0, st.session_state.get(_SHARED, {}).get(shared))
        value = next((v for v in earlier if v is not None and _valid(v, choices, lo, hi)), default)
    st.session_state[key] = value
    return value


def url_publish(*keys: str, shared: str | None = None) -> None:
    """Write the current widget values of `keys` (session keys) into the URL under their URL names,
    and keep a copy for later visits; with `shared`, also as the latest value of that shared choice."""
    kept = st.session_state.setdefault(_KEEP, {})
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        st.query_params[url_name(key)] = str(value)
        kept[key] = value
        if shared is not None:
            st.session_state.setdefault(_SHARED, {})[shared] = value


def bound(
    widget: Callable[..., T],
    key: str,
    default: Any,
    *args: Any,
    parse: Callable[[str], Any] | None = None,
    choices: Sequence | None = None,
    lo: float | None = None,
    hi: float | None = None,
    legacy: str | None = None,
    shared: str | None = None,
    **kwargs: Any,
) -> T:
    """A widget bound to the URL in one call: seed `key` from the link (or a kept value, or
    `default`), draw `widget(*args, key=key, **kwargs)`, publish its value back.

        key = page_keys("text")
        t = bound(st.slider, key("t"), 0.9, "Threshold t", 0.0, 1.0, lo=0.0, hi=1.0, step=0.01)
        name = bound(st.selectbox, key("sample"), names[0], "Text", names, choices=names)

    The session key is `text.t`, the URL parameter `t`; `legacy` and `shared` as in `url_value`.
    A widget that is not drawn in a run is not published: what a link carries is what the page shows.
    """
    url_value(key, default, parse, choices=choices, lo=lo, hi=hi, legacy=legacy, shared=shared)
    value = widget(*args, key=key, **kwargs)
    url_publish(key, shared=shared)
    return value


def kept_value(key: str, default: T) -> T:
    """Like url_value for state too long for a URL (typed text): kept across visits to the page
    only, under its session key (`<page>.<name>`), never in the URL."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(_KEEP, {}).get(key, default)
    return st.session_state[key]


def keep(*keys: str) -> None:
    """Keep widget values (not in the URL) for the next visit to this page, by session key."""
    kept = st.session_state.setdefault(_KEEP, {})
    for key in keys:
        if key in st.session_state:
            kept[key] = st.session_state[key]
