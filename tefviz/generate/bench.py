"""`python -m tefviz bench generate`: decoding speed and KV-cache bytes with an evicted cache
against dense decoding of the same prompt, in one run on one machine."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from tefviz.bench import describe_device, save_results, synchronize
from tefviz.generate.evicted import generate_evicted, kl_summary

BASELINES = ("streaming_llm", "h2o", "tova", "key_norm", "tef_causal")


def bench_generate(
    source: str,
    out: Path | None,
    tokens: int = 2048,
    new_tokens: int = 128,
    budget: int | None = None,
    policies: tuple[str, ...] = BASELINES,
    tef: Path | None = None,
) -> dict:
    """Prompt = held-out text up to `tokens - new_tokens`; each policy decodes `new_tokens` with a
    cache of `budget` entries per layer (default: half the prompt), timed alone, then once more
    beside dense for the per-step KL and the divergence point."""
    from tefviz.data.heldout import heldout_text
    from tefviz.models import load_causal_lm
    from tefviz.text.tef import TEFHeads

    lm = load_causal_lm(source, dtype=torch.float32)
    n_prompt = min(tokens, lm.context_length) - new_tokens
    ids = lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"][:n_prompt]
    budget = budget or len(ids) // 2
    heads = TEFHeads.load(tef, lm.device) if tef is not None else None
    results = {
        "model": lm.name,
        "device": describe_device(lm.device, lm.dtype),
        "prompt_tokens": len(ids),
        "new_tokens": new_tokens,
        "budget_per_layer": budget,
        "text": "held-out Austen (shipped sample)",
        "runs": {},
    }

    def timed(policy: str, **kw) -> tuple[float, object]:
        synchronize(lm.device)
        start = time.perf_counter()
        g = generate_evicted(
            lm.model, ids, policy, max_new_tokens=new_tokens, compare=False, heads=heads, **kw
        )
        synchronize(lm.device)
        return time.perf_counter() - start, g

    chosen = ["dense", *[p for p in policies if p != "tef_causal" or heads is not None]]
    for policy in tqdm(chosen, desc="bench generate"):
        kw = {} if policy == "dense" else {"budget": budget}
        seconds, g = timed(policy, **kw)
        row = {
            "seconds": round(seconds, 3),
            "tokens_per_s": round(new_tokens / seconds, 2),
            "final_cache_bytes": g.steps[-1].cache_bytes,
        }
        if policy != "dense":
            row.update(
                {
                    k: v
                    for k, v in kl_summary(
                        generate_evicted(lm.model, ids, policy, max_new_tokens=new_tokens, heads=heads, **kw)
                    ).items()
                    if k in ("mean_kl", "max_kl", "diverged_at")
                }
            )
        results["runs"][policy] = row
    dense = results["runs"]["dense"]
    print(
        f"{lm.name} on {results['device']}: prompt {len(ids)} tokens, {new_tokens} new, "
        f"budget {budget} entries per layer"
    )
    for policy, r in results["runs"].items():
        extra = (
            ""
            if policy == "dense"
            else (f"  mean KL to dense {r['mean_kl']:.4f}, diverges at step {r['diverged_at']}")
        )
        speed = r["tokens_per_s"] / dense["tokens_per_s"]
        size = r["final_cache_bytes"] / dense["final_cache_bytes"]
        print(
            f"  {policy:14s} {r['tokens_per_s']:7.2f} tok/s ({speed:.2f}x dense), "
            f"cache {r['final_cache_bytes'] / 2**20:7.2f} MiB ({size:.2f}x){extra}"
        )
    save_results(results, out)
    return results
