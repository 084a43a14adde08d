"""Errors as a clear message in the page, with the detail folded away; never a raw traceback."""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from typing import TypeVar

import streamlit as st
import torch

from tefviz.errors import TefvizError

T = TypeVar("T")

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=])")


_AUTOLINK = re.compile(r"(://|www\.|@)", re.IGNORECASE)


def literal(text: object) -> str:
    """`text` as Streamlit markdown that shows it literally: every markdown character escaped, and
    a zero-width space inside "://", "www." and "@" (GitHub-flavoured markdown links bare URLs and
    addresses even when escaped), so a value from a link never becomes a link, an image or
    formatting."""
    text = " ".join(str(text).splitlines())  # no line may start a heading, a list or a quote
    text = _AUTOLINK.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)
    return _MARKDOWN.sub(r"\\\1", text)


def show_error(what: str, exc: BaseException) -> None:
    """`what` and the error's message may hold user or URL text: both are shown literally."""
    if isinstance(exc, TefvizError):
        st.error(literal(f"{what}: {exc}"), icon=":material/error:")
        detail = exc.detail
    elif isinstance(exc, torch.OutOfMemoryError):
        st.error(
            literal(
                f"{what}: the device ran out of memory. Try a shorter text or a smaller setting; "
                "your other choices are kept."
            ),
            icon=":material/memory:",
        )
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        detail = str(exc)
    else:
        st.error(
            literal(
                f"{what} failed unexpectedly ({type(exc).__name__}). Your choices are kept; "
                "the details below help a bug report."
            ),
            icon=":material/bug_report:",
        )
        detail = "".join(traceback.format_exception(exc))
    if detail:
        with st.expander("Details"):
            st.code(detail, language=None)


def guarded(what: str, fn: Callable[..., T], *args, **kwargs) -> T | None:
    """Call fn; on failure show the error in the page and return None."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the page stays usable whatever went wrong
        show_error(what, exc)
        return None
