"""Speed and memory of exact attention and its approximations against length, with the fitted
slope of log time on log length (about 2 for exact attention, about 1 for linear methods).

Each (method, length) runs in its own process, as in `tefviz.attention.bench`, so peak memory
is its own. `python -m tefviz bench approx` drives it; the page calls the same function.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tefviz.attention.approx import APPROXIMATIONS, exact_attention, make_approximation
from tefviz.attention.bench import run_cases
from tefviz.bench import PeakMemory, describe_device, save_results, time_calls
from tefviz.errors import InputError

# the two exact references, then every registered approximation at its `bench_size`
METHODS = ("exact", "exact_sdpa", *APPROXIMATIONS.names())
SIZES = {name: cls.bench_size for name, cls in APPROXIMATIONS.items()}
EXACT_LIMIT_BYTES = 8 * 2**30  # the materialised score matrix (and its softmax) must fit in this


def _method(name: str, causal: bool) -> Callable:
    if name == "exact":
        return lambda q, k, v: exact_attention(q, k, v, causal=causal).out
    if name == "exact_sdpa":
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    approx = make_approximation(name, SIZES[name])
    return lambda q, k, v: approx(q, k, v, causal=causal).out


def run_case(method: str, n: int, heads: int, head_dim: int, repeats: int, device: str, causal: bool) -> dict:
    dev = torch.device(device)
    if method == "exact" and 2 * n * n * heads * 4 > EXACT_LIMIT_BYTES:
        return {
            "method": method,
            "n": n,
            "skipped": f"the {n}x{n} score matrix would need {2 * n * n * heads * 4 / 2**30:.0f} GB",
        }
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, head_dim, device=dev) * 0.5 for _ in range(3))
    fn = _method(method, causal)
    with torch.no_grad(), PeakMemory(dev) as mem:
        timing = time_calls(lambda: fn(q, k, v), repeats, dev)
    return {"method": method, "n": n, "median_s": timing["median_s"], "peak_mb_over_inputs": mem.mb}


def fitted_slopes(runs: list[dict], min_n: int = 1024) -> dict:
    """Least-squares slope of log(time) on log(n) per method, over lengths >= min_n."""
    out = {}
    for method in sorted({r["method"] for r in runs}):
        pts = [
            (math.log(r["n"]), math.log(r["median_s"]))
            for r in runs
            if r["method"] == method and "median_s" in r and r["n"] >= min_n and r["median_s"] > 0
        ]
        if len({x for x, _ in pts}) >= 2:
            x, y = np.array(pts).T
            out[method] = round(float(np.polyfit(x, y, 1)[0]), 2)
    return out


def bench_approx(
    lengths: list[int],
    methods: tuple[str, ...] = METHODS,
    heads: int = 1,
    head_dim: int = 64,
    repeats: int = 3,
    causal: bool = False,
    device: str | None = None,
    out: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
    timeout_s: float = 600,
) -> dict:
    from tefviz.device import pick_device

    bad = [n for n in lengths if n < 256]
    if bad:
        raise InputError(f"lengths must be at least 256 (the largest basis/projection size); not {bad}")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise InputError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if causal and {"linformer", "infinity_former"} & set(methods):
        raise InputError("Linformer and the continuous memory are not causal; bench them with causal off")
    dev = str(device or pick_device())
    results = {
        "heads": heads,
        "head_dim": head_dim,
        "causal": causal,
        "sizes": SIZES,
        "device": describe_device(dev, "float32"),
        "runs": [],
    }
    cases = [
        {
            "method": m,
            "n": n,
            "heads": heads,
            "head_dim": head_dim,
            "repeats": repeats,
            "device": dev,
            "causal": causal,
        }
        for n in sorted(lengths)
        for m in methods
    ]
    results["runs"] = run_cases("tefviz.attention.approx_bench", cases, "method", timeout_s, progress)
    results["slopes"] = fitted_slopes(results["runs"])
    save_results(results, out)
    return results


def print_table(results: dict) -> None:
    print(
        f"attention vs approximations on {results['device']}, {results['heads']} head(s) x "
        f"{results['head_dim']}, causal={results['causal']}, sizes {results['sizes']}"
    )
    for r in results["runs"]:
        if "median_s" in r:
            print(
                f"  {r['method']:16s} n={r['n']:6d}  {r['median_s'] * 1e3:9.1f} ms  "
                f"peak +{r['peak_mb_over_inputs']:8.1f} MB"
            )
        else:
            print(f"  {r['method']:16s} n={r['n']:6d}  {r.get('skipped') or 'failed: ' + r.get('error', '')}")
    print(
        "  fitted slope of log time on log length: "
        + ", ".join(f"{m} {s}" for m, s in results["slopes"].items())
    )


if __name__ == "__main__":
    print(json.dumps(run_case(**json.loads(sys.argv[1]))))
    sys.stdout.flush()
