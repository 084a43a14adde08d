"""What a sparse pattern really costs: dense causal SDPA (the baseline), SDPA with a boolean mask,
compiled FlexAttention with a BlockMask, and a block-sparse gather written here, timed and
measured for peak memory across lengths on the current device.

Each (implementation, length) runs in its own process so its peak memory is its own (on the CPU
the peak resident set; on CUDA the allocator's peak) and one case's compile cache or memory
cannot flatter another. `python -m tefviz bench attention` drives it; the page calls the same
`bench_attention` with a progress callback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from tefviz.attention.block_masks import BLOCK, block_mask_for, block_table, build_block_mask, pattern_key
from tefviz.attention.masks import row_chunks
from tefviz.attention.patterns import build_pattern
from tefviz.attention.patterns.causal import causal_mod
from tefviz.bench import PeakMemory, describe_device, save_results, synchronize, time_calls
from tefviz.errors import InputError

IMPLEMENTATIONS = ("dense_causal", "mask_sdpa", "flex", "block_gather")


def _pattern_mod(pattern: str, params: dict, n: int):
    from torch.nn.attention.flex_attention import and_masks

    return and_masks(build_pattern(pattern, n, **params).mask_mod, causal_mod)


def _block_table(mod, n: int, block: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n/b, n/b) bool: which key blocks hold any allowed cell for each query block, from the
    pattern's BlockMask (built without materialising n x n)."""
    return torch.from_numpy(block_table(build_block_mask(mod, n, device, block)).table > 0)


def block_gather_attention(
    q, k, v, mod, block: int = BLOCK, table: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact masked attention computing only the key blocks each query block needs (`table`:
    from _block_table, built once outside the timed calls)."""
    n, d = q.shape[-2:]
    table = _block_table(mod, n, block, q.device) if table is None else table
    out = torch.empty_like(q)
    dev = q.device
    zero = torch.zeros((), dtype=torch.long, device=dev)
    scale = d**-0.5
    for i in range(n // block):
        cols = torch.nonzero(table[i], as_tuple=True)[0].to(dev)
        kv_idx = (cols[:, None] * block + torch.arange(block, device=dev)[None, :]).reshape(-1)
        qi = torch.arange(i * block, (i + 1) * block, device=dev)
        allowed = mod(zero, zero, qi[:, None], kv_idx[None, :])
        s = (q[:, :, qi] @ k[:, :, kv_idx].transpose(-1, -2)) * scale
        s = s.masked_fill(~allowed, float("-inf"))
        out[:, :, qi] = torch.softmax(s.float(), -1).to(v.dtype) @ v[:, :, kv_idx]
    return out


def _make_impl(impl: str, mod, n: int, device: torch.device, key: tuple | None = None) -> Callable:
    if impl == "dense_causal":
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if impl == "mask_sdpa":
        # the n x n boolean mask is what this implementation is measured with: built in row chunks
        mask = torch.empty(n, n, dtype=torch.bool, device=device)
        zero = torch.zeros((), dtype=torch.long)
        for a, b in row_chunks(n):
            mask[a:b] = mod(zero, zero, torch.arange(a, b)[:, None], torch.arange(n)[None, :]).to(device)
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if impl == "flex":
        from torch.nn.attention.flex_attention import flex_attention

        block_mask = (
            block_mask_for(key, mod, n, device, BLOCK)
            if key is not None
            else build_block_mask(mod, n, device, BLOCK)
        )
        compiled = torch.compile(flex_attention, dynamic=False)
        return lambda q, k, v: compiled(q, k, v, block_mask=block_mask)
    if impl == "block_gather":
        table = _block_table(mod, n, BLOCK, device)  # setup, not timed
        return lambda q, k, v: block_gather_attention(q, k, v, mod, table=table)
    raise InputError(f"unknown implementation {impl!r}; choose one of {IMPLEMENTATIONS}")


def run_case(
    impl: str,
    pattern: str,
    params: dict,
    n: int,
    heads: int,
    head_dim: int,
    repeats: int,
    device: str,
    dtype: str,
) -> dict:
    """One measurement, in this process: setup (mask building, compiling) apart from the timed calls."""
    dev = torch.device(device)
    dt = getattr(torch, dtype)
    if n % BLOCK:
        raise InputError(f"lengths must be multiples of {BLOCK}, got {n}")
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, head_dim, device=dev, dtype=dt) for _ in range(3))
    with torch.no_grad(), PeakMemory(dev) as mem:
        t0 = time.perf_counter()
        mod = _pattern_mod(pattern, params, n)
        fn = _make_impl(impl, mod, n, dev, pattern_key(pattern, params))
        fn(q, k, v)  # builds masks, compiles flex
        synchronize(dev)
        setup_s = time.perf_counter() - t0
        timing = time_calls(lambda: fn(q, k, v), repeats, dev)
    return {
        "impl": impl,
        "n": n,
        "median_s": timing["median_s"],
        "min_s": timing["min_s"],
        "setup_s": round(setup_s, 3),
        "peak_mb_over_inputs": mem.mb,
    }


def bench_attention(
    lengths: list[int],
    pattern: str = "sliding",
    params: dict | None = None,
    impls: tuple[str, ...] = IMPLEMENTATIONS,
    heads: int = 12,
    head_dim: int = 64,
    repeats: int = 3,
    device: str | None = None,
    dtype: str = "float32",
    out: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
    timeout_s: float = 300,
) -> dict:
    """Every implementation at every length, each in a fresh process; JSON saved to `out`."""
    from tefviz.device import pick_device

    params = params if params is not None else {"window": 256, "causal": 1}
    # bad settings fail here, before any process starts
    bad = [n for n in lengths if n < BLOCK or n % BLOCK]
    if bad:
        raise InputError(f"lengths must be positive multiples of {BLOCK}; not {bad}")
    build_pattern(pattern, min(lengths), **params)
    dev = str(device or pick_device())
    results = {
        "pattern": pattern,
        "params": params,
        "heads": heads,
        "head_dim": head_dim,
        "dtype": dtype,
        "device": describe_device(dev),
        "runs": [],
    }
    cases = [
        {
            "impl": impl,
            "pattern": pattern,
            "params": params,
            "n": n,
            "heads": heads,
            "head_dim": head_dim,
            "repeats": repeats,
            "device": dev,
            "dtype": dtype,
        }
        for n in lengths
        for impl in impls
    ]
    results["runs"] = run_cases("tefviz.attention.bench", cases, "impl", timeout_s, progress)
    results["speedups_vs_dense"] = speedups(results["runs"])
    save_results(results, out)
    return results


def run_cases(module: str, cases: list[dict], name_key: str, timeout_s: float, progress=None) -> list[dict]:
    """Each case (the JSON spec `python -m module` takes) in a process of its own, one after the
    other, with progress named by the case's `name_key` and length; a row per case."""
    rows = []
    for i, case in enumerate(cases):
        if progress:
            progress(i / len(cases), f"{case[name_key]} at {case['n']} tokens")
        ident = {name_key: case[name_key], "n": case["n"]}
        rows.append(run_isolated(module, json.dumps(case), ident, timeout_s))
    if progress:
        progress(1.0, "done")
    return rows


def run_isolated(module: str, spec: str, ident: dict, timeout_s: float) -> dict:
    """Run `python -m module spec` in a fresh process; its last stdout line is the JSON result.
    A failure or a timeout becomes a row with an "error" beside `ident`."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, spec], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {**ident, "error": f"took longer than {timeout_s:.0f} s"}
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode == 0 and line.startswith("{"):
        return json.loads(line)
    return {**ident, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}


def speedups(runs: list[dict]) -> dict:
    """{impl: {n: dense time / impl time}} for the lengths where both ran."""
    dense = {r["n"]: r["median_s"] for r in runs if r["impl"] == "dense_causal" and "median_s" in r}
    out: dict = {}
    for r in runs:
        if "median_s" in r and r["impl"] != "dense_causal" and r["n"] in dense:
            out.setdefault(r["impl"], {})[str(r["n"])] = round(dense[r["n"]] / r["median_s"], 2)
    return out


def print_table(results: dict) -> None:
    print(
        f"pattern {results['pattern']} {results['params']} on {results['device']}, "
        f"{results['heads']} heads x {results['head_dim']}, {results['dtype']}"
    )
    for r in results["runs"]:
        if "error" in r:
            print(f"  {r['impl']:13s} n={r['n']:6d}  failed: {r['error']}")
        else:
            print(
                f"  {r['impl']:13s} n={r['n']:6d}  {r['median_s'] * 1e3:9.1f} ms  "
                f"peak +{r['peak_mb_over_inputs']:8.1f} MB  (setup {r['setup_s']:.1f} s)"
            )
    for impl, by_n in results["speedups_vs_dense"].items():
        print(
            f"  speed-up of {impl} over dense causal SDPA: "
            + ", ".join(f"{n}: {x}x" for n, x in by_n.items())
        )


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(run_case(**spec)))
    sys.stdout.flush()
