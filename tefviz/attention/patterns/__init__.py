"""Attention patterns, one file per family, registered here by name.

Adding a pattern: subclass `PatternKind` in a new module (its `params` say how to draw each
setting), decorate it with `@register`, import the module below. `build_pattern(name, n,
**params)` gives a `Pattern` with its mask_mod.
"""

from __future__ import annotations

from tefviz.attention.patterns.base import MaskMod, Param, Pattern, PatternKind
from tefviz.registry import Registry

PATTERNS: Registry[type[PatternKind]] = Registry("pattern")
register = PATTERNS.register


def build_pattern(name: str, n: int, **params: int) -> Pattern:
    """The pattern `name` at length n, its parameters checked against their ranges."""
    kind = PATTERNS.load(name)
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
