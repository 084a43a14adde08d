"""The analogue of the paper's Table 1: perplexity and tokens kept vs threshold, per scorer.

The held-out text is cut into windows of `block` tokens (the paper measured at 512); each
scorer scores each window once and the window is then run once per threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from tefviz.device import device_of
from tefviz.errors import InputError
from tefviz.text.filtering import DropPolicy, dense_pass
from tefviz.text.scorers.base import TokenScorer

THRESHOLDS = (1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5)


@dataclass
class ScorerRun:
    """One row group of the table: a scorer, the model it runs on, how it drops tokens."""

    label: str
    scorer: TokenScorer
    model: nn.Module
    policy: DropPolicy


def windows_of(ids: list[int], block: int, limit: int | None = None) -> list[torch.Tensor]:
    if block < 2:
        raise InputError(f"block must be >= 2, got {block}")
    out = [torch.tensor(ids[s : s + block]) for s in range(0, len(ids) - block + 1, block)]
    return out[:limit] if limit else out


@torch.no_grad()
def evaluate_scorers(
    runs: list[ScorerRun],
    reference: nn.Module,
    windows: list[torch.Tensor],
    thresholds: tuple[float, ...] = THRESHOLDS,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """{"reference": {...}, "scorers": {label: [{"t", "perplexity", "kept_tokens", ...}]}}."""
    if not windows:
        raise InputError("no complete window to evaluate: the text is shorter than one block")
    ref_nll = torch.cat([dense_pass(reference, w.to(device_of(reference))).nll for w in windows])
    table: dict = {"reference": {"perplexity": round(math.exp(float(ref_nll.mean())), 4),
                                 "tokens": int(ref_nll.numel()), "windows": len(windows),
                                 "block": int(windows[0].numel())},
                   "thresholds": list(thresholds), "scorers": {}}
    total = len(runs) * len(windows)
    bar = tqdm(total=total, desc="eval text", disable=progress is not None)
    done = 0
    for run in runs:
        sums = {t: [0.0, 0, 0.0, 0.0] for t in thresholds}  # nll, count, kept tokens, kept fraction
        for w in windows:
            w = w.to(device_of(run.model))
            scores = run.scorer.score(run.model, w)
            for t in thresholds:
                fp = run.scorer.filtered(run.model, w, scores, t, run.policy)
                acc = sums[t]
                acc[0] += float(fp.nll.sum())
                acc[1] += fp.nll.numel()
                acc[2] += float(fp.masks.kept_by_last_query().float().sum(-1).mean())
                acc[3] += fp.masks.kept_fraction
            done += 1
            bar.update(1)
            if progress:
                progress(done / total)
        table["scorers"][run.label] = {
            "scorer": run.scorer.name, "mode": run.policy.mode,
            "rows": [{"t": t, "perplexity": round(math.exp(a[0] / a[1]), 4),
                      "kept_tokens": round(a[2] / len(windows), 2),
                      "kept_fraction": round(a[3] / len(windows), 4)} for t, a in sums.items()],
        }
    bar.close()
    return table
