"""Attention approximations, one file per method, registered here by name.

Adding one: subclass `Approximation` in a new module (its class fields name its size knob, say
whether it is seeded, causal, bounded by the length), decorate it with `@register`, import it below.
"""

from __future__ import annotations

from tefviz.attention.approx.base import Approximation, ApproxOutput, exact_attention, relative_error, row_kl
from tefviz.registry import Registry

APPROXIMATIONS: Registry[type[Approximation]] = Registry("approximation")
register = APPROXIMATIONS.register


def make_approximation(name: str, size: int, **kwargs) -> Approximation:
    """The method with its size knob (m, k or N: the class's `size_param`) set."""
    cls = APPROXIMATIONS.get_class(name)
    return cls(**{cls.size_param: size}, **kwargs)


from tefviz.attention.approx import infinity_former, linformer, performer  # noqa: E402,F401

__all__ = [
    "APPROXIMATIONS",
    "ApproxOutput",
    "Approximation",
    "exact_attention",
    "make_approximation",
    "register",
    "relative_error",
    "row_kl",
]
