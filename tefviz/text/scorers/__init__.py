"""Text scorers: one file per method, each registered here by name.

Adding a scorer: subclass `TokenScorer` in a new module (its class fields say what the pages and
commands need: label, description, whether it is a baseline, its display order), decorate it
with `@register`, and import the module below.
"""

from __future__ import annotations

from tefviz.errors import InputError
from tefviz.registry import Registry
from tefviz.text.scorers.base import TokenScorer, TokenScores

SCORERS: Registry[type[TokenScorer]] = Registry("scorer")
register = SCORERS.register


def get_scorer(name: str, **kwargs) -> TokenScorer:
    """The scorer `name`, built with `kwargs` (e.g. TEF heads)."""
    return SCORERS.load(name, **kwargs)


def baseline_names() -> list[str]:
    """The scorers that need no trained heads, in display order (KV-cache baselines first)."""
    return SCORERS.names(where=lambda c: c.baseline)


def tef_scorer_class(variant: str) -> type[TokenScorer]:
    """The scorer class that runs TEF heads of `variant` (its `tef_variant`)."""
    match = SCORERS.names(where=lambda c: c.tef_variant == variant)
    if not match:
        raise InputError(f"no scorer runs TEF heads of variant {variant!r}")
    return SCORERS[match[0]]


def tef_variants() -> set[str]:
    """The TEF head variants some scorer runs."""
    return {c.tef_variant for c in SCORERS.values() if c.tef_variant}


def tef_scorer(heads) -> TokenScorer:
    """The scorer for trained TEF heads (`TEFHeads`), whichever their variant."""
    return tef_scorer_class(heads.config.variant)(heads=heads)


from tefviz.text.scorers import (  # noqa: E402,F401
    attention_mass,
    h2o,
    key_norm,
    leave_one_out,
    random_drop,
    snapkv,
    streaming_llm,
    tef_scorers,
    tova,
    uniform,
)

__all__ = [
    "SCORERS",
    "TokenScorer",
    "TokenScores",
    "baseline_names",
    "get_scorer",
    "register",
    "tef_scorer",
    "tef_scorer_class",
    "tef_variants",
]
