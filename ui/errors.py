"""Errors as a clear message in the page, with the detail folded away; never a raw traceback."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TypeVar

import streamlit as st
import torch

from tefviz.errors import TefvizError

T = TypeVar("T")


def show_error(what: str, exc: BaseException) -> None:
    if isinstance(exc, TefvizError):
        st.error(f"{what}: {exc}", icon=":material/error:")
        detail = exc.detail
    elif isinstance(exc, torch.OutOfMemoryError):
        st.error(f"{what}: the device ran out of memory. Try a shorter text or a smaller setting; "
                 "your other choices are kept.", icon=":material/memory:")
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        detail = str(exc)
    else:
        st.error(f"{what} failed unexpectedly ({type(exc).__name__}). Your choices are kept; "
                 "the details below help a bug report.", icon=":material/bug_report:")
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
