"""SVD-TEF (the thesis' "mSVD"): two conv branches ("U" and "V") make patch tokens, a small
scorer gates each one, and the gate is the token's share of the "explained variance"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from tefviz.images.budget import Selection
from tefviz.images.figures import FigureSpec, patch_score_figures
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.images.tokenizers.base import (
    ImageConfig,
    ScoredTokenizer,
    TokenBatch,
    conv_branch,
    normalise_pixels,
    stages_for,
)

if TYPE_CHECKING:
    from tefviz.images.view import ImageAnalysis


@TOKENIZERS.register
class SVDTEFTokenizer(ScoredTokenizer):
    name = "svd_tef"
    label = "SVD-TEF"
    description = (
        "Two conv branches make one token per patch; a learned gate g in (0, 1) scales "
        "each token and ranks it for the threshold."
    )
    order = 0
    summary = (
        "SVD-TEF learns a gate per patch and keeps patches, highest gate first, while their cumulative "
        "share stays within t"
    )
    score_name = "gate g"
    gate_penalty = True
    top_k_table = (16, 32, 40, 48)
    reduced = Selection(t=0.8)

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        stages = stages_for(cfg.patch)
        self.branch_u = conv_branch(1, cfg.conv_channels, stages, cfg.dim)
        self.branch_v = conv_branch(1, cfg.conv_channels, stages, cfg.dim)
        self.merge = nn.Linear(2 * cfg.dim, cfg.dim)
        hidden = max(cfg.dim // 4, 8)
        self.scorer = nn.Sequential(
            nn.Linear(cfg.dim, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, 1)
        )

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        x = normalise_pixels(images)
        u = self.branch_u(x).flatten(2).transpose(1, 2)
        v = self.branch_v(x).flatten(2).transpose(1, 2)
        tokens = self.merge(torch.cat([u, v], -1))
        gate = torch.sigmoid(self.scorer(tokens)).squeeze(-1)
        return TokenBatch(
            tokens * gate.unsqueeze(-1), self.grid_positions(tokens.shape[0], tokens.device), scores=gate
        )

    @classmethod
    def training_budget(cls, cfg: ImageConfig, gen: torch.Generator, t_min: float | None = None) -> Selection:
        """Every token (the thesis: filtering at inference only); with `t_min`, half the batches
        drop tokens at a random t in [t_min, 1]."""
        if t_min is not None and float(torch.rand(1, generator=gen)) < 0.5:
            return Selection(t=t_min + (1 - t_min) * float(torch.rand(1, generator=gen)))
        return Selection()

    def figures(self, res: ImageAnalysis, image: np.ndarray, sel: Selection) -> list[FigureSpec]:
        return patch_score_figures(
            image, res.scores, res.keep, res.positions, self.cfg.grid, self.cfg.patch, self.score_name, sel.t
        )
