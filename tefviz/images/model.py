"""One ViT classifier behind every tokenizer, and the ways to drop tokens from it.

Positions are added to the tokens *before* any filtering, so a dropped token never shifts another's
position; kept tokens are gathered to the front and padded to the batch's longest kept set with a
key-padding mask, so fewer tokens is really less work. CLS is always kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tefviz.errors import InputError
from tefviz.images.budget import Selection
from tefviz.images.tokenizers import TOKENIZERS, ImageConfig, TokenBatch
from tefviz.text.keep import cumulative_keep_mask, normalise_shares


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, classes)
    tokens: TokenBatch  # what the tokenizer made (scores for the overlay)
    keep: torch.Tensor  # (B, N) bool over the tokenizer's tokens: survived the input filter
    tnt_importance: torch.Tensor | None  # (B, N) softmax importance at the TNT layer
    tnt_keep: torch.Tensor | None  # (B, N) bool: survived TNT pruning
    n_tokens: torch.Tensor  # (B,) tokens entering the encoder, CLS included
    n_tokens_final: torch.Tensor  # (B,) tokens after TNT pruning, CLS included


def input_keep_mask(batch: TokenBatch, sel: Selection) -> torch.Tensor:
    """(B, N) tokens kept before the encoder: every valid one, or the threshold / top-k on scores."""
    valid = (
        batch.valid
        if batch.valid is not None
        else torch.ones(batch.tokens.shape[:2], dtype=torch.bool, device=batch.tokens.device)
    )
    if sel.t is not None and sel.top_k is not None:
        raise InputError("choose a threshold t or a top-k, not both")
    if batch.scores is None or (sel.t is None and sel.top_k is None):
        return valid
    if sel.top_k is not None:
        n = batch.scores.shape[1]
        if not sel.top_k >= 1:
            raise InputError(f"top-k must be at least 1, got {sel.top_k}")
        k = min(sel.top_k, n)
        masked = batch.scores.masked_fill(~valid, -1.0)
        idx = masked.topk(k, dim=1).indices
        return torch.zeros_like(valid).scatter(1, idx, True) & valid
    return cumulative_keep_mask(normalise_shares(batch.scores, valid), float(sel.t), valid=valid)


def gather_kept(x: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move kept rows of x (B, N, D) to the front in their original order and cut to the longest
    kept set: (x', padding (B, M) True where padded, index (B, M) into N)."""
    counts = keep.sum(1)
    longest = max(int(counts.max()), 1)
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :longest]
    x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    padding = torch.arange(longest, device=x.device)[None, :] >= counts[:, None]
    return x, padding, order


class ImageClassifier(nn.Module):
    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = TOKENIZERS.load(cfg.tokenizer, cfg=cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos = nn.Parameter(torch.randn(cfg.max_tokens + 1, cfg.dim) * 0.02)  # row 0: CLS
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.dim, cfg.heads, cfg.mlp, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.classes)
        self.tnt_heads = nn.ModuleDict({str(i): nn.Linear(cfg.dim, 1) for i in cfg.tnt_layers})
        self.tnt_noise = 0.0  # > 0 while training the TNT heads: noise std relative to token RMS

    def tokenize(self, images: torch.Tensor, sel: Selection | None = None) -> TokenBatch:
        """The tokenizer's scored tokens: they depend on the selection's budget (the FFT crop) only,
        never on t, top-k or TNT, so one tokenization serves every threshold."""
        sel = sel or Selection()
        images = images.to(self.cls.device, self.cls.dtype)  # inputs may come from the CPU
        return self.tokenizer(images, **sel.budget())

    def forward(
        self, images: torch.Tensor, sel: Selection | None = None, tokens: TokenBatch | None = None
    ) -> ClassifierOutput:
        """Classify `images` with the tokens `sel` keeps; `tokens`, when given, is their
        `tokenize(images, sel)` made earlier (the images are then not read again)."""
        sel = sel or Selection()
        if sel.tnt_keep is not None and not 0.0 < sel.tnt_keep <= 1.0:
            raise InputError(f"TNT keep rate must lie in (0, 1], got {sel.tnt_keep}")
        if sel.tnt_keep is not None and not self.cfg.tnt_layers:
            raise InputError("this model has no TNT heads; train them with `train images --tnt`")
        batch = tokens if tokens is not None else self.tokenize(images, sel)
        keep = input_keep_mask(batch, sel)
        x = batch.tokens + self.pos[batch.positions + 1]
        x, padding, index = gather_kept(x, keep)
        b = x.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1) + self.pos[0], x], 1)
        padding = torch.cat([padding.new_zeros(b, 1), padding], 1)
        n_tokens = (~padding).sum(1)
        importance = tnt_keep = None
        for i, block in enumerate(self.blocks):
            x = block(x, src_key_padding_mask=padding)
            if str(i) not in self.tnt_heads:
                continue
            head = self.tnt_heads[str(i)]
            logits = head(x[:, 1:]).squeeze(-1).masked_fill(padding[:, 1:], float("-inf"))
            a = logits.softmax(-1)
            if i == self.cfg.tnt_layers[0]:
                importance = torch.zeros_like(keep, dtype=a.dtype).scatter(
                    1, index, a.masked_fill(padding[:, 1:], 0)
                )
            if self.training and self.tnt_noise > 0:
                x = x.clone()
                x[:, 1:] = add_allocated_noise(x[:, 1:], a, padding[:, 1:], self.tnt_noise)
            elif sel.tnt_keep is not None and i == self.cfg.tnt_layers[0]:
                x, padding, kept_index = prune_by_importance(x, padding, a, sel.tnt_keep)
                # padded slots of the pruned set point at real (pruned) tokens: scatter only real ones
                tnt_keep = torch.zeros_like(keep).scatter(
                    1, torch.gather(index, 1, kept_index), ~padding[:, 1:]
                )
                tnt_keep &= keep
        x = self.norm(x[:, 0])
        return ClassifierOutput(self.head(x), batch, keep, importance, tnt_keep, n_tokens, (~padding).sum(1))


def add_allocated_noise(
    x: torch.Tensor, a: torch.Tensor, padding: torch.Tensor, scale: float
) -> torch.Tensor:
    """TNT's noise allocator: Gaussian noise on each patch token, larger the less important it is.
    Importance a is a softmax over the image's tokens (a shared budget, the rate constraint of the
    information bottleneck); the most important token gets none, the least nearly `scale` x its RMS."""
    rel = a / a.max(-1, keepdim=True).values.clamp_min(1e-12)
    rms = x.detach().pow(2).mean((-1, -2), keepdim=True).sqrt()
    noise = torch.randn_like(x) * (scale * rms) * (1 - rel).unsqueeze(-1)
    return x + noise.masked_fill(padding.unsqueeze(-1), 0)


def prune_by_importance(
    x: torch.Tensor, padding: torch.Tensor, a: torch.Tensor, rate: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep CLS and the top floor(N * rate) patch tokens (N: the image's real tokens) by importance."""
    real = (~padding[:, 1:]).sum(1)
    k = (real.float() * rate).floor().long().clamp_min(1)
    ranks = a.masked_fill(padding[:, 1:], -1.0).argsort(1, descending=True).argsort(1)
    keep = (ranks < k[:, None]) & ~padding[:, 1:]
    patches, pad, kept_index = gather_kept(x[:, 1:], keep)
    return torch.cat([x[:, :1], patches], 1), torch.cat([padding[:, :1], pad], 1), kept_index
