"""Text scorers: one file per method, each registered here by name.

Adding a scorer: subclass `TokenScorer` in a new module, decorate it with `@register`,
and import the module below.
"""

from __future__ import annotations

from tefviz.errors import InputError
from tefviz.text.scorers.base import TokenScorer, TokenScores

SCORERS: dict[str, type[TokenScorer]] = {}


def register(cls: type[TokenScorer]) -> type[TokenScorer]:
    if cls.name in SCORERS:
        raise ValueError(f"scorer {cls.name!r} registered twice")
    SCORERS[cls.name] = cls
    return cls


def get_scorer(name: str, **kwargs) -> TokenScorer:
    if name not in SCORERS:
        raise InputError(f"unknown scorer {name!r}; choose one of {sorted(SCORERS)}")
    return SCORERS[name](**kwargs)


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

__all__ = ["SCORERS", "TokenScorer", "TokenScores", "get_scorer", "register"]
