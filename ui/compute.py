"""Model compute runs one at a time per server and lane.

One forward pass already uses every core (torch's intra-op threads); two at once on a 2-core
machine oversubscribe the cores and both finish later than they would one after the other. Under a
class of sessions, cached functions already compute each distinct result once (Streamlit holds a
lock per cache key); a lock serialises the distinct ones. Long work (scoring a 4,096-token text,
sweeps) has a lane of its own, so a 0.15 s text pass never queues behind it; the longest and most
frequent job under a class, classifying the Images page's 2,000-image subset, runs in a worker
process instead (tefviz/workers.py: in-process torch work waits for the interpreter lock between
operators while other sessions' page scripts hold it). Page scripts (figures, HTML) run concurrently
as before. A session waiting here cannot be interrupted (Streamlit does not stop a run inside a
cached function either).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_LANES = {"interactive": threading.RLock(), "long": threading.RLock()}


def one_at_a_time(fn: Callable[..., T] | None = None, *, lane: str = "interactive"):
    """Decorate a function that runs a model (under st.cache_data / st.cache_resource):
    `@one_at_a_time` or `@one_at_a_time(lane="long")`."""

    def decorate(f: Callable[..., T]) -> Callable[..., T]:
        lock = _LANES[lane]  # KeyError for a lane that does not exist

        @functools.wraps(f)
        def wrapper(*args, **kwargs) -> T:
            with lock:
                return f(*args, **kwargs)

        return wrapper

    return decorate(fn) if fn is not None else decorate
