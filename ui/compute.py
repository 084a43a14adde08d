"""Model compute runs one at a time per server.

One forward pass already uses every core (torch's intra-op threads); two at once on a 2-core
machine oversubscribe the cores and both finish later than they would one after the other. Under a
class of sessions, cached functions already compute each distinct result once (Streamlit holds a
lock per cache key); this lock serialises the distinct ones. Page scripts (figures, HTML) run
concurrently as before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_SLOT = threading.RLock()


def one_at_a_time(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a function that runs a model (under st.cache_data / st.cache_resource)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        with _SLOT:
            return fn(*args, **kwargs)

    return wrapper
