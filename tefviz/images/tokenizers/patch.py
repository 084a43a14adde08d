"""ViT patch embedding: the unscored baseline (every patch is a token)."""

from __future__ import annotations

import torch
from torch import nn

from tefviz.images.tokenizers import TOKENIZERS
from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, TokenBatch, normalise_pixels


@TOKENIZERS.register
class PatchTokenizer(ImageTokenizer):
    name = "patch"
    label = "ViT patches"
    description = "Each 4x4-pixel patch is linearly embedded; no scores, so only TNT can prune it."
    order = 3
    summary = "TNT prunes a plain ViT inside the encoder"
    tnt_base = True
    no_budget_note = "This ViT has no scores and no TNT heads: every patch is kept."

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.proj = nn.Conv2d(1, cfg.dim, cfg.patch, stride=cfg.patch)

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        x = self.proj(normalise_pixels(images)).flatten(2).transpose(1, 2)
        return TokenBatch(x, self.grid_positions(x.shape[0], x.device))
