"""Exact SVD tokens (training-free reference of the thesis): token i is singular component i of
the image, s_i u_i beside v_i, scored by its explained variance s_i^2 / sum s^2."""

from __future__ import annotations

import torch
from torch import nn

from tefviz.images.spectral import explained_variance, oriented_svd
from tefviz.images.tokenizers import register
from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, TokenBatch


@register
class ExactSVDTokenizer(ImageTokenizer):
    name = "svd_exact"
    label = "Exact SVD"
    description = (
        "One token per singular component of the image (no learned scorer): the "
        "threshold keeps components while their explained variance sums to <= t."
    )
    scored = True
    score_name = "explained variance"

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.proj = nn.Linear(2 * cfg.image_size, cfg.dim)

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        # components of the un-normalised image: its SVD is what the page explains
        u, s, vh = oriented_svd(images[:, 0])
        # s_i u_i carries the component's strength; unit v_i is scaled by sqrt(n) to entries of O(1)
        feats = torch.cat([u.transpose(-1, -2) * s[..., None], vh * images.shape[-1] ** 0.5], -1)
        tokens = self.proj(feats)
        b, k = s.shape
        positions = torch.arange(k, device=images.device).expand(b, k)
        return TokenBatch(tokens, positions, scores=explained_variance(s))
