"""Server hardening that Streamlit's settings do not reach, installed once per process by app.py.

1. A paste holding a lone UTF-16 surrogate: the browser encodes it as three bytes that are not
   UTF-8 (ED A0..BF 80..BF), protobuf refuses the whole message ("String field had bad UTF-8"),
   Streamlit closes the connection, and every later move of that page is lost. Incoming frames
   that fail to parse have those sequences replaced by U+FFFD, also three bytes (EF BF BD), so no
   length in the message changes; frames that parse are left alone.
2. Any websocket client can send "clear_cache", which empties every user's caches (the next run
   took 3.6 s instead of 0.8 s). Visitors cannot any more; TEFVIZ_ALLOW_CACHE_CLEAR=1 allows it
   (for development).

Both patch private Streamlit internals of the pinned version (requirements.txt); tests check them.
"""

from __future__ import annotations

import logging
import os
import re

_LONE_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
_log = logging.getLogger("tefviz")


def repair_backmsg(data: bytes) -> bytes:
    """The frame as is when it parses; else with lone surrogates replaced by U+FFFD."""
    if not _LONE_SURROGATE.search(data):  # nearly every frame: nothing to repair, no second parse
        return data
    from streamlit.proto.BackMsg_pb2 import BackMsg

    try:
        BackMsg().ParseFromString(data)
        return data  # the bytes were inside a number, not a string
    except Exception:  # protobuf's DecodeError; a frame that stays broken is refused by Streamlit
        return _LONE_SURROGATE.sub(b"\xef\xbf\xbd", data)


def _tolerant_receive_bytes():
    from starlette.websockets import WebSocket

    original = WebSocket.receive_bytes
    if getattr(original, "_tefviz", False):
        return

    async def receive_bytes(self) -> bytes:
        return repair_backmsg(await original(self))

    receive_bytes._tefviz = True  # type: ignore[attr-defined]
    WebSocket.receive_bytes = receive_bytes  # type: ignore[method-assign]


def _no_visitor_cache_clearing() -> None:
    from streamlit.runtime.app_session import AppSession

    original = AppSession._handle_clear_cache_request
    if getattr(original, "_tefviz", False):
        return

    def handle_clear_cache_request(self) -> None:
        if os.environ.get("TEFVIZ_ALLOW_CACHE_CLEAR") == "1":
            original(self)
        else:
            _log.warning("a client asked to clear every cache: ignored (TEFVIZ_ALLOW_CACHE_CLEAR=1 allows)")

    handle_clear_cache_request._tefviz = True  # type: ignore[attr-defined]
    AppSession._handle_clear_cache_request = handle_clear_cache_request  # type: ignore[method-assign]


def install() -> None:
    """Idempotent: safe to call on every run of app.py."""
    _tolerant_receive_bytes()
    _no_visitor_cache_clearing()
