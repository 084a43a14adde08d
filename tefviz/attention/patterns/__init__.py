"""Attention patterns, one file per family, registered here by name.

Adding a pattern: subclass `PatternKind` in a new module, decorate it with `@register`, import
the module below. `build_pattern(name, n, **params)` gives a `Pattern` with its mask_mod.
"""

from __future__ import annotations

from tefviz.attention.patterns.base import MaskMod, Param, Pattern, PatternKind
from tefviz.errors import InputError

PATTERNS: dict[str, PatternKind] = {}


def register(cls: type[PatternKind]) -> type[PatternKind]:
    if cls.name in PATTERNS:
        raise ValueError(f"pattern {cls.name!r} registered twice")
    PATTERNS[cls.name] = cls()
    return cls


def build_pattern(name: str, n: int, **params: int) -> Pattern:
    if name not in PATTERNS:
        raise InputError(f"unknown pattern {name!r}; choose one of {sorted(PATTERNS)}")
    kind = PATTERNS[name]
    return kind.build(n, **kind.checked(n, params))


from tefviz.attention.patterns import (  # noqa: E402,F401
    bigbird,
    blockwise,
    causal,
    dilated,
    global_tokens,
    random_blocks,
    sliding,
)

__all__ = ["PATTERNS", "MaskMod", "Param", "Pattern", "PatternKind", "build_pattern", "register"]
