"""How the pages' cached functions key the objects they take (Streamlit's `hash_funcs`).

A loaded model, TEF heads or a scorer is passed to a cached function as itself; its key is a short
string that changes exactly when what it computes changes (model name, source and weights version;
a scorer's name and settings, or its heads' checkpoint and version). Nothing is keyed by pickling a
model, and no page passes a key string beside the object it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tefviz.models import LoadedLM
from tefviz.text.scorers import SCORERS, TokenScorer
from tefviz.text.tef import TEFHeads

_SIMPLE = (int, float, str, bool, type(None))


def heads_key(heads: TEFHeads) -> str:
    key = getattr(heads, "cache_key", None)
    if not key:
        raise TypeError("TEF heads reach a cached function only through ui.loaders.get_tef (it names them)")
    return key


def scorer_key(scorer: TokenScorer) -> str:
    """The scorer's name and settings; a TEF scorer's heads by checkpoint and version."""
    heads = getattr(scorer, "heads", None)
    if heads is not None:
        return f"{scorer.name}:{heads_key(heads)}"
    settings = sorted((k, v) for k, v in vars(scorer).items() if isinstance(v, _SIMPLE))
    return scorer.name + (repr(settings) if settings else "")


def cache_keys() -> dict[type, Callable[[Any], str]]:
    """`hash_funcs` for st.cache_data / st.cache_resource. Streamlit matches the exact type, so every
    registered scorer class is listed (built when the page runs: a newly registered one is in)."""
    keys: dict[type, Callable[[Any], str]] = {LoadedLM: lambda lm: lm.cache_key, TEFHeads: heads_key}
    keys.update({cls: scorer_key for cls in SCORERS.values()})
    return keys
