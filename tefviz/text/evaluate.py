"""The analogue of the paper's Table 1: perplexity and tokens kept vs threshold, per scorer.

The held-out text is cut into windows of `block` tokens (the paper measured at 512); each
scorer scores each window once and the window is then run once per threshold. Every row keeps
its per-window losses, so methods can be compared window by window (`paired_comparisons`).
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
# under a fixed budget (`DropPolicy.budget`) the same numbers are kept fractions; at 1.0 every
# method is the dense model, so the table starts below it
KEPT_FRACTIONS = (0.9, 0.8, 0.7, 0.5, 0.3)


@dataclass
class ScorerRun:
    """One row group of the table: a scorer, the model it runs on, how it drops tokens."""

    label: str
    scorer: TokenScorer
    model: nn.Module
    policy: DropPolicy
    kind: str = "baseline"  # "baseline" rows compete for the best baseline; "tef" rows are compared


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
    ref_windows = [dense_pass(reference, w.to(device_of(reference))).nll for w in windows]
    ref_nll = torch.cat(ref_windows)
    table: dict = {
        "reference": {
            "perplexity": round(math.exp(float(ref_nll.mean())), 4),
            "tokens": int(ref_nll.numel()),
            "windows": len(windows),
            "block": int(windows[0].numel()),
            "window_loss": [round(float(x.mean()), 6) for x in ref_windows],
        },
        "thresholds": list(thresholds),
        "scorers": {},
    }
    total = len(runs) * len(windows)
    bar = tqdm(total=total, desc="eval text", disable=progress is not None)
    done = 0
    for run in runs:
        sums = {t: [0.0, 0, 0.0, 0.0] for t in thresholds}  # nll, count, kept tokens, kept fraction
        per_window: dict[float, list[float]] = {t: [] for t in thresholds}  # mean nll (nats)
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
                per_window[t].append(round(float(fp.nll.mean()), 6))
            done += 1
            bar.update(1)
            if progress:
                progress(done / total)
        table["scorers"][run.label] = {
            "scorer": run.scorer.name,
            "mode": run.policy.mode,
            "kind": run.kind,
            "rows": [
                {
                    "t": t,
                    "perplexity": round(math.exp(a[0] / a[1]), 4),
                    "kept_tokens": round(a[2] / len(windows), 2),
                    "kept_fraction": round(a[3] / len(windows), 4),
                    "window_loss": per_window[t],
                }
                for t, a in sums.items()
            ],
        }
    bar.close()
    return table


# two-sided 95 % quantiles of Student's t by degrees of freedom (beyond 30: interpolated to 1.96)
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    if df < 1:
        return float("nan")
    if df <= len(_T975):
        return _T975[df - 1]
    return 1.96 + (2.042 - 1.96) * 30 / df  # within 0.002 of the exact value for df > 30


def paired_ratio(method: list[float], best: list[float]) -> dict:
    """Perplexity ratio method / best over the same windows, with a 95 % t-interval on the
    per-window log-ratios (every window has the same number of tokens, so exp(mean log-ratio)
    is exactly the ratio of the pooled perplexities), and how many windows each wins."""
    d = torch.tensor(method, dtype=torch.float64) - torch.tensor(best, dtype=torch.float64)
    w = d.numel()
    mean = float(d.mean())
    if w > 1:
        half = t_quantile_975(w - 1) * float(d.std(unbiased=True)) / math.sqrt(w)
        low, high = math.exp(mean - half), math.exp(mean + half)
    else:
        low = high = float("nan")
    return {
        "ratio": round(math.exp(mean), 5),
        "low": round(low, 5),
        "high": round(high, 5),
        "wins": int((d < 0).sum()),
        "losses": int((d > 0).sum()),
        "windows": w,
    }


COMPARE_AT = (0.8, 0.5)
CI_METHOD = (
    "95 % t-interval over windows on the per-window log perplexity ratio (paired: the same "
    "windows for both methods)"
)


def paired_comparisons(table: dict, thresholds: tuple[float, ...] = COMPARE_AT) -> dict:
    """At each threshold, every method against the best baseline (lowest perplexity among the
    "baseline" rows): {str(t): {"best": label, "methods": {label: paired_ratio + kept_fraction}}}."""
    out: dict = {}
    for t in thresholds:
        rows = {
            label: next((r for r in g["rows"] if r["t"] == t), None) for label, g in table["scorers"].items()
        }
        rows = {label: r for label, r in rows.items() if r is not None and r.get("window_loss")}
        baselines = [label for label in rows if table["scorers"][label].get("kind", "baseline") == "baseline"]
        if not baselines:
            continue
        best = min(baselines, key=lambda label: rows[label]["perplexity"])
        methods = {}
        for label, r in rows.items():
            methods[label] = {
                **paired_ratio(r["window_loss"], rows[best]["window_loss"]),
                "perplexity": r["perplexity"],
                "kept_fraction": r["kept_fraction"],
                "kind": table["scorers"][label].get("kind", "baseline"),
            }
        out[str(t)] = {"best": best, "method": CI_METHOD, "methods": methods}
    return out
