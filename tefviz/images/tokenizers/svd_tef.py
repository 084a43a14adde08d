"""SVD-TEF (the thesis' "mSVD"): two conv branches ("U" and "V") make patch tokens, a small
scorer gates each one, and the gate is the token's share of the "explained variance"."""

from __future__ import annotations

import torch
from torch import nn

from tefviz.images.tokenizers import register
from tefviz.images.tokenizers.base import (
    ImageConfig,
    ImageTokenizer,
    TokenBatch,
    conv_branch,
    normalise_pixels,
    stages_for,
)


@register
class SVDTEFTokenizer(ImageTokenizer):
    name = "svd_tef"
    label = "SVD-TEF"
    description = (
        "Two conv branches make one token per patch; a learned gate g in (0, 1) scales "
        "each token and ranks it for the threshold."
    )
    scored = True
    score_name = "gate g"

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
