"""Global tokens: the first g tokens (CLS, a [GLB] marker) see and are seen by everyone, so any two
tokens are at most two hops apart (the lecture: cat -> GLB -> sad). Alone it connects only
through the globals; combine it with a window (`or`) as Longformer does."""

from __future__ import annotations

from tefviz.attention.patterns import register
from tefviz.attention.patterns.base import Param, Pattern, PatternKind
from tefviz.errors import InputError


def global_mod(n_global: int):
    def mod(b, h, q, kv):
        return (q < n_global) | (kv < n_global) | (q == kv)

    return mod


@register
class GlobalTokens(PatternKind):
    name = "global"
    order = 30
    label = "Global tokens"
    definition = "q < g or k < g (or q == k)"
    params = (Param("n_global", 1, 1, 4096, "g: how many leading tokens are global"),)

    def build(self, n: int, n_global: int) -> Pattern:
        if n_global > n:
            raise InputError(f"{n_global} global tokens do not fit a sequence of {n}")
        return Pattern(
            self.name,
            {"n_global": n_global},
            global_mod(n_global),
            self.definition,
            {"global_tokens": list(range(n_global))},
        )
