"""The interface of every attention pattern: parameters in, a FlexAttention `mask_mod` out.

A mask_mod is `allowed(b, h, q_idx, kv_idx) -> bool tensor`, written with element-wise tensor
ops only, so the same function builds a dense boolean matrix by broadcasting (plots, small
lengths), a `BlockMask` for block-sparse compute, and composes with `and_masks` / `or_masks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from tefviz.errors import InputError
from tefviz.params import Param, checked_ints

MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Pattern:
    """A configured pattern: its mask_mod for a given length, and a one-line definition."""

    name: str
    params: dict
    mask_mod: MaskMod
    definition: str
    extras: dict = field(default_factory=dict)  # e.g. which tokens are global, for plots


class PatternKind:
    """A family of patterns: subclasses set the class fields and implement `build`."""

    name: ClassVar[str]
    label: ClassVar[str]
    definition: ClassVar[str]  # the rule, in words, with the parameters' names
    params: ClassVar[tuple[Param, ...]] = ()
    order: ClassVar[int] = 100  # display order in the pickers

    @classmethod
    def length_unit(cls, params: dict) -> int:
        """Texts run under this pattern are cut to a multiple of this (its "block" settings)."""
        return max([int(params.get(p.name, p.default)) for p in cls.params if p.kind == "block"] or [1])

    def build(self, n: int, **params: int) -> Pattern:
        raise NotImplementedError

    def checked(self, n: int, params: dict) -> dict:
        """Parameters with defaults filled in, or InputError saying what is wrong."""
        if n < 1:
            raise InputError(f"the sequence length must be at least 1, got {n}")
        return checked_ints(self.label, self.params, params)
