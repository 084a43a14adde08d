"""Attention approximations, one file per method, registered here by name."""

from __future__ import annotations

from tefviz.attention.approx.base import Approximation, ApproxOutput, exact_attention, relative_error, row_kl
from tefviz.errors import InputError

APPROXIMATIONS: dict[str, type[Approximation]] = {}


def register(cls: type[Approximation]) -> type[Approximation]:
    if cls.name in APPROXIMATIONS:
        raise ValueError(f"approximation {cls.name!r} registered twice")
    APPROXIMATIONS[cls.name] = cls
    return cls


def make_approximation(name: str, size: int, **kwargs) -> Approximation:
    """The method with its size knob (m, k or N) set."""
    if name not in APPROXIMATIONS:
        raise InputError(f"unknown approximation {name!r}; choose one of {sorted(APPROXIMATIONS)}")
    cls = APPROXIMATIONS[name]
    key = {"performer": "m", "linformer": "k", "infinity_former": "n_basis"}[name]
    return cls(**{key: size}, **kwargs)


from tefviz.attention.approx import infinity_former, linformer, performer  # noqa: E402,F401

__all__ = ["APPROXIMATIONS", "ApproxOutput", "Approximation", "exact_attention", "make_approximation",
           "relative_error", "row_kl"]
