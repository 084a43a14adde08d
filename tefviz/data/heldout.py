"""The small public-domain held-out text shipped with the app (no corpus needed at run time)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

HELDOUT_PATH = Path(__file__).resolve().parent.parent / "assets" / "heldout_austen.json"


@lru_cache(maxsize=1)
def heldout_samples() -> list[dict]:
    """[{'id': 'Emma/012', 'text': ...}, ...]: Austen test-split chapters, never trained on."""
    return json.loads(HELDOUT_PATH.read_text(encoding="utf-8"))["samples"]


def heldout_text() -> str:
    return "\n\n".join(s["text"] for s in heldout_samples())
