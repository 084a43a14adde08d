"""Benchmarks that print and save numbers: baseline and alternative side by side, one run.

The harness every benchmark uses lives here: `time_calls` (synchronises the GPU before each clock
read, so CUDA's asynchronous launches are not mistaken for finished work), `PeakMemory` (the GPU
allocator's peak on CUDA, the process's peak resident set on the CPU), `describe_device` (the
device and dtype every benchmark prints and saves) and `save_results`.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from tefviz.device import hardware, pick_device


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued GPU work, so a clock read after it measures the work, not its launch."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


def time_calls(fn: Callable[[], object], repeats: int, device: torch.device | str | None = None) -> dict:
    """Median and best wall time of `fn` over `repeats` calls after one warm-up call; with a GPU
    `device`, each call is timed up to the end of its GPU work."""
    fn()  # warm-up (allocations, kernel selection, compilation)
    synchronize(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5), "repeats": repeats}


def _proc_status_mb(field: str) -> float | None:
    """VmHWM (peak resident set) or VmRSS of this process from /proc, in MiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_mb(device: torch.device | str) -> float:
    """The peak memory so far, in MiB: the CUDA allocator's on a GPU, else the process's peak
    resident set (VmHWM; `getrusage` would not do: its peak survives exec, so a benchmark process
    started by a big one inherits its parent's peak)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """`with PeakMemory(device) as m: ...` then `m.mb`: the peak reached inside, over what was in
    use on entry (on CUDA the allocator's statistics are reset; on Linux the process's peak
    resident set is reset through /proc/self/clear_refs, so each block measures its own peak)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.mb = 0.0

    def __enter__(self) -> PeakMemory:
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
                self._base = _proc_status_mb("VmRSS") or peak_mb(self.device)
            except OSError:
                self._base = peak_mb(self.device)
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.mb = round(max(peak_mb(self.device) - self._base, 0.0), 1)


def describe_device(device: torch.device | str | None = None, dtype: torch.dtype | str | None = None) -> str:
    """'cuda:0 (NVIDIA H200; 139.8 GiB GPU memory), bfloat16': what every benchmark prints and saves."""
    dev = torch.device(device) if device is not None else pick_device()
    name, detail = hardware(dev)
    where = f"{dev} ({name}; {detail})"
    return where if dtype is None else f"{where}, {str(dtype).removeprefix('torch.')}"


def save_results(results: dict, out: Path | None) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"saved {out}")


def bench_lm(source: str, out: Path | None, tokens: int = 512, repeats: int = 5) -> dict:
    """Checkpoint load time, and one forward pass of `tokens` tokens in fp32 vs bf16 (time and
    peak memory), on the policy's device."""
    from tefviz.models import load_causal_lm

    t = time.perf_counter()
    lm = load_causal_lm(source, dtype=torch.float32)
    synchronize(lm.device)
    load_s = time.perf_counter() - t
    n = min(tokens, lm.context_length)
    ids = torch.randint(0, len(lm.tokenizer), (1, n), device=lm.device)
    results = {
        "model": lm.name,
        "device": describe_device(lm.device),
        "tokens": n,
        "load_s": round(load_s, 3),
        "forward": {},
    }
    for name, dtype in tqdm([("float32", torch.float32), ("bfloat16", torch.bfloat16)], desc="bench lm"):
        model = lm.model.to(dtype)
        with torch.no_grad(), PeakMemory(lm.device) as mem:
            results["forward"][name] = time_calls(lambda m=model: m(input_ids=ids), repeats, lm.device)
        results["forward"][name]["peak_mb"] = mem.mb
    base = results["forward"]["float32"]["median_s"]
    bf16 = results["forward"]["bfloat16"]["median_s"]
    results["bf16_speedup"] = round(base / bf16, 2)
    print(
        f"{lm.name} on {results['device']}: load {load_s:.2f} s; forward {n} tokens: "
        f"fp32 {base * 1e3:.1f} ms, bf16 {bf16 * 1e3:.1f} ms ({results['bf16_speedup']}x)"
    )
    save_results(results, out)
    return results


def bench_text(
    source: str, tef_dirs: list[Path], out: Path | None, tokens: int = 512, repeats: int = 5
) -> dict:
    """What the Text page pays per interaction on 512 held-out tokens: the scoring pass (once
    per text and scorer) beside the filtered pass (once per threshold), with the plain dense
    forward of transformers as the baseline; fp32 on the policy's device."""
    from tefviz.data.heldout import heldout_text
    from tefviz.models import load_causal_lm
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import SCORERS, get_scorer, tef_scorer
    from tefviz.text.tef import TEFHeads, tef_checkpoint_lm

    lm = load_causal_lm(source, dtype=torch.float32)
    dev = lm.device
    n = min(tokens, lm.context_length)
    ids = torch.tensor(lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"][:n], device=dev)
    results = {
        "model": lm.name,
        "device": describe_device(dev, lm.dtype),
        "tokens": n,
        "dense_forward": None,
        "scorers": {},
    }
    with torch.no_grad(), PeakMemory(dev) as mem:
        results["dense_forward"] = time_calls(lambda: lm.model(input_ids=ids[None]), repeats, dev)
    results["dense_forward"]["peak_mb"] = mem.mb
    runs = [
        (name, get_scorer(name), lm.model, DropPolicy(SCORERS[name].default_mode))
        for name in SCORERS.names(where=lambda c: c.benchmarked)
    ]
    for d in tef_dirs:
        heads = TEFHeads.load(d, dev)
        own = tef_checkpoint_lm(d) == d
        model = load_causal_lm(d, device=dev, dtype=torch.float32).model if own else lm.model
        scorer = tef_scorer(heads)
        runs.append((d.name, scorer, model, DropPolicy(scorer.default_mode)))
    for label, scorer, model, policy in tqdm(runs, desc="bench text"):
        scores = scorer.score(model, ids)
        row = {"score_pass": time_calls(lambda s=scorer, m=model: s.score(m, ids), repeats, dev)}
        with PeakMemory(dev) as mem:
            row["filtered_pass_t0.7"] = time_calls(
                lambda s=scorer, m=model, sc=scores, p=policy: s.filtered(m, ids, sc, 0.7, p), repeats, dev
            )
        row["filtered_pass_t0.7"]["peak_mb"] = mem.mb
        results["scorers"][label] = row
    base = results["dense_forward"]["median_s"]
    print(f"{lm.name} on {results['device']}, {n} tokens: dense forward (transformers) {base * 1e3:.1f} ms")
    for label, r in results["scorers"].items():
        print(
            f"  {label:28s} scoring {r['score_pass']['median_s'] * 1e3:7.1f} ms (once per text)   "
            f"filtered pass {r['filtered_pass_t0.7']['median_s'] * 1e3:7.1f} ms (per threshold)"
        )
    save_results(results, out)
    return results
