"""Exact SVD tokens (training-free reference of the thesis): token i is singular component i of
the image, s_i u_i beside v_i, scored by its explained variance s_i^2 / sum s^2."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from tefviz.images.budget import Selection
from tefviz.images.figures import FigureSpec, rank_k_figures
from tefviz.images.spectral import explained_variance, oriented_svd
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.images.tokenizers.base import ImageConfig, ScoredTokenizer, TokenBatch

if TYPE_CHECKING:
    from tefviz.images.view import ImageAnalysis

NULL_RELATIVE = 1e-5  # singular values below this share of the largest are numerically zero


@TOKENIZERS.register
class ExactSVDTokenizer(ScoredTokenizer):
    name = "svd_exact"
    label = "Exact SVD"
    description = (
        "One token per singular component of the image (no learned scorer): the "
        "threshold keeps components while their explained variance sums to <= t."
    )
    order = 2
    summary = "exact SVD keeps singular components"
    score_name = "explained variance"
    top_k_table = (1, 2, 4, 8, 16)
    reduced = Selection(t=0.9)

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.proj = nn.Linear(2 * cfg.image_size, cfg.dim)

    @classmethod
    def token_count(cls, cfg: ImageConfig) -> int:
        return cfg.image_size  # one token per singular component

    @classmethod
    def training_budget(cls, cfg: ImageConfig, gen: torch.Generator, t_min: float | None = None) -> Selection:
        """A random number of leading components per batch."""
        return Selection(top_k=int(torch.randint(1, cfg.image_size + 1, (1,), generator=gen)))

    def figures(self, res: ImageAnalysis, image: np.ndarray, sel: Selection) -> list[FigureSpec]:
        return rank_k_figures(image, res.scores, res.keep, sel.t)

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        # components of the un-normalised image: its SVD is what the page explains
        u, s, vh = oriented_svd(images[:, 0])
        # s_i u_i carries the component's strength; unit v_i is scaled by sqrt(n) to entries of O(1).
        # Components with no energy (padding, narrow garments) have arbitrary u, v (any basis of the
        # null space, backend-dependent): they are not tokens (marked invalid, and zeroed).
        alive = (s > NULL_RELATIVE * s[..., :1]).to(s.dtype)[..., None]
        vs = vh * images.shape[-1] ** 0.5 * alive
        feats = torch.cat([u.transpose(-1, -2) * s[..., None], vs], -1)
        tokens = self.proj(feats)
        b, k = s.shape
        positions = torch.arange(k, device=images.device).expand(b, k)
        valid = alive[..., 0] > 0
        return TokenBatch(
            tokens, positions, scores=explained_variance(s), valid=None if bool(valid.all()) else valid
        )
