"""The two TEF variants as scorers: their heads score each block, and they decide what to
drop inside the forward pass (the paper's gates also rescale what they keep)."""

from __future__ import annotations

import torch

from tefviz.errors import InputError
from tefviz.text.filtering import FilteredPass, KeepMasks, token_nll
from tefviz.text.scorers import register
from tefviz.text.scorers.base import TokenScorer, TokenScores
from tefviz.text.tef import TEFHeads


class _TEFScorer(TokenScorer):
    baseline = False

    def __init__(self, heads: TEFHeads | None = None) -> None:
        if heads is None:
            raise InputError(f"the {self.label} scorer needs trained TEF heads (a TEF checkpoint)")
        if heads.config.variant != self.tef_variant:
            raise InputError(f"these are {heads.config.variant!r} TEF heads, not {self.tef_variant!r}")
        self.heads = heads

    @torch.no_grad()
    def score(self, model, ids, progress=None) -> TokenScores:
        out = self.heads(model, ids.reshape(1, -1), 1.0)
        if progress:
            progress(1.0)
        return TokenScores(out.scores[:, 0].float().cpu())

    @torch.no_grad()
    def filtered(self, model, ids, scores, t, policy=None) -> FilteredPass:
        ids = ids.reshape(-1)
        budget = policy is not None and policy.budget
        out = self.heads(model, ids[None], t, budget=budget)
        n = ids.numel()
        if out.tokens is not None:
            tokens = out.tokens[:, 0].cpu()
            masks = KeepMasks(tokens[:, None, :] & torch.ones(n, n, dtype=torch.bool).tril(), tokens)
        else:
            masks = KeepMasks(out.keys[:, 0].cpu(), None)
        return FilteredPass(token_nll(out.logits[0], ids).cpu(), masks)


@register
class PaperTEFScorer(_TEFScorer):
    name = "tef_paper"
    label = "TEF, paper (GPT2-TEF)"
    description = (
        "The original design: sigmoid gates per block, shares over the whole text, dropped "
        "tokens zeroed; the LM fine-tuned with the mask at t = 0.99."
    )
    tef_variant = "paper"
    default_mode = "zero"  # the paper zeroes dropped tokens' block inputs
    order = 1


@register
class CausalTEFScorer(_TEFScorer):
    name = "tef_causal"
    label = "TEF, causal (improved)"
    description = (
        "Per block, each query keeps the keys of its prefix by softmax shares; dropped tokens "
        "leave the context; heads distilled from the frozen LM."
    )
    tef_variant = "causal"
    order = 0
