"""Exact leave-one-out: the ground truth for what matters, affordable only for short texts.

Token j's score is how much the summed loss of the text rises when j is hidden from every
query at every block (its own prediction untouched): one forward pass per token. It uses the
whole text, later tokens' losses included, so it is an oracle, not a usable scorer.
"""

from __future__ import annotations

import torch

from tefviz.lm import masked_forward, model_parts
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores


def _summed_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logp.gather(-1, ids[:, 1:, None])[..., 0].sum(-1)


@register
class LeaveOneOutScorer(TokenScorer):
    name = "leave_one_out"
    order = 90
    label = "Leave-one-out (exact, short texts)"
    description = (
        "How much the text's total loss rises when the token is hidden from all later tokens: "
        "one forward pass per token, so only for short texts."
    )
    max_tokens = 256

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        ids = ids.reshape(-1)
        n = ids.numel()
        layers = model_parts(model).n_layer
        base = _summed_nll(masked_forward(model, ids[None]).logits, ids[None])[0]
        rise = torch.zeros(n)
        for start in range(0, n, self.batch_size):
            hidden = torch.arange(start, min(start + self.batch_size, n))
            b = hidden.numel()
            keep = torch.ones(b, n, dtype=torch.bool, device=ids.device)
            keep[torch.arange(b), hidden] = False
            keys = keep[None, :, None, :].expand(layers, b, n, n)
            batch = ids[None].expand(b, n)
            hidden_nll = _summed_nll(masked_forward(model, batch, key_keep=keys).logits, batch)
            rise[hidden] = (hidden_nll - base).cpu()
            if progress:
                progress(min(1.0, (start + b) / n))
        # hiding a token can also help; such tokens are worth nothing to keep
        return TokenScores(rise.clamp_min(0)[None])
