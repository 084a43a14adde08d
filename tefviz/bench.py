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


def _time(fn, repeats: int) -> dict:
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
            results["forward"][name] = _time(lambda m=model: m(input_ids=ids), repeats)
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
