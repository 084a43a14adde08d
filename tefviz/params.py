"""Integer settings with ranges, shared by every family that exposes knobs (attention patterns,
embedding compressors): pages build widgets from them, `checked_ints` validates user input.

`kind` says what a page needs to know to draw the widget, so no page tests a parameter's name:
"int" (a number; its range may be capped by the sequence length), "bool" (0 or 1: a checkbox),
"seed" (any value in range, never capped), "block" (a length unit: texts are cut to a multiple of
it), "rank" (at most the embedding width)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tefviz.errors import InputError


@dataclass(frozen=True)
class Param:
    name: str
    default: int
    lo: int
    hi: int
    help: str
    kind: Literal["int", "bool", "seed", "block", "rank"] = "int"


def checked_ints(label: str, specs: Sequence[Param], given: dict) -> dict:
    """`given` with defaults filled in, or InputError saying what is wrong."""
    known = {p.name for p in specs}
    unknown = set(given) - known
    if unknown:
        raise InputError(f"{label} has no parameter {sorted(unknown)} (no setting of that name)")
    out = {}
    for p in specs:
        v = given.get(p.name, p.default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputError(f"{p.name} must be an integer, got {v!r}")
        if not p.lo <= v <= p.hi:
            raise InputError(f"{p.name} must lie in [{p.lo}, {p.hi}], got {v}")
        out[p.name] = v
    return out
