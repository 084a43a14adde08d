"""Benchmarks that print and save numbers: baseline and alternative side by side, one run."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from tefviz.device import device_info
from tefviz.models import load_causal_lm


def time_calls(fn, repeats: int) -> dict:
    fn()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5),
            "repeats": repeats}


def bench_lm(source: str, out: Path | None, tokens: int = 512, repeats: int = 5) -> dict:
    """Checkpoint load time, and one forward pass of `tokens` tokens in fp32 vs bf16."""
    info = device_info()
    t = time.perf_counter()
    lm = load_causal_lm(source, dtype=torch.float32)
    load_s = time.perf_counter() - t
    n = min(tokens, lm.context_length)
    ids = torch.randint(0, len(lm.tokenizer), (1, n), device=lm.device)
    results = {"model": lm.name, "device": f"{info.device} ({info.name}; {info.detail})",
               "tokens": n, "load_s": round(load_s, 3), "forward": {}}
    for name, dtype in tqdm([("float32", torch.float32), ("bfloat16", torch.bfloat16)], desc="bench lm"):
        model = lm.model.to(dtype)
        with torch.no_grad():
            results["forward"][name] = time_calls(lambda m=model: m(input_ids=ids), repeats)
    base = results["forward"]["float32"]["median_s"]
    bf16 = results["forward"]["bfloat16"]["median_s"]
    results["bf16_speedup"] = round(base / bf16, 2)
    print(f"{lm.name} on {results['device']}: load {load_s:.2f} s; forward {n} tokens: "
          f"fp32 {base * 1e3:.1f} ms, bf16 {bf16 * 1e3:.1f} ms ({results['bf16_speedup']}x)")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"saved {out}")
    return results


def bench_text(source: str, tef_dirs: list[Path], out: Path | None, tokens: int = 512,
               repeats: int = 5) -> dict:
    """What the Text page pays per interaction on 512 held-out tokens: the scoring pass (once
    per text and scorer) beside the filtered pass (once per threshold), with the plain dense
    forward of transformers as the baseline."""
    from tefviz.data.heldout import heldout_text
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import get_scorer
    from tefviz.text.tef import TEFHeads, tef_checkpoint_lm

    info = device_info()
    lm = load_causal_lm(source, dtype=torch.float32)
    n = min(tokens, lm.context_length)
    ids = torch.tensor(lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"][:n],
                       device=lm.device)
    results = {"model": lm.name, "device": f"{info.device} ({info.name}; {info.detail})", "tokens": n,
               "dense_forward": None, "scorers": {}}
    with torch.no_grad():
        results["dense_forward"] = time_calls(lambda: lm.model(input_ids=ids[None]), repeats)
    runs = [(name, get_scorer(name), lm.model, DropPolicy("evict")) for name in ("uniform", "attention")]
    for d in tef_dirs:
        heads = TEFHeads.load(d)
        own = tef_checkpoint_lm(d) == d
        model = load_causal_lm(d, dtype=torch.float32).model if own else lm.model
        runs.append((d.name, get_scorer(f"tef_{heads.config.variant}", heads=heads), model,
                     DropPolicy("zero" if heads.config.variant == "paper" else "evict")))
    for label, scorer, model, policy in tqdm(runs, desc="bench text"):
        scores = scorer.score(model, ids)
        results["scorers"][label] = {
            "score_pass": time_calls(lambda s=scorer, m=model: s.score(m, ids), repeats),
            "filtered_pass_t0.7": time_calls(lambda s=scorer, m=model, sc=scores, p=policy:
                                        s.filtered(m, ids, sc, 0.7, p), repeats),
        }
    base = results["dense_forward"]["median_s"]
    print(f"{lm.name} on {results['device']}, {n} tokens: dense forward (transformers) {base * 1e3:.0f} ms")
    for label, r in results["scorers"].items():
        print(f"  {label:28s} scoring {r['score_pass']['median_s'] * 1e3:6.0f} ms (once per text)   "
              f"filtered pass {r['filtered_pass_t0.7']['median_s'] * 1e3:6.0f} ms (per threshold)")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"saved {out}")
    return results
