"""`python -m tefviz check device`: every page's core pipeline and every benchmark on this machine's
device, in one table (what ran, time, peak memory, pass or fail, the numbers it produced).

CI has no GPU, so this is how a GPU session checks the project end to end in one command: run it,
read the table, put the figures in the README with the device named. On a CPU it runs the same
checks at CPU-sized benchmark lengths. Checks run in order until the time budget is spent; the
rest are listed as skipped. With Streamlit installed, each page's AppTest runs as well (the
device tool's machine has no Streamlit unless its wheels are carried).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from tefviz.bench import PeakMemory, describe_device, save_results
from tefviz.checkpoints import checkpoints_root, list_checkpoints
from tefviz.device import pick_device, pick_dtype


@dataclass
class Check:
    group: str  # the page or command it stands for
    name: str
    run: Callable[[], str]  # returns a one-line result; raises on failure


@dataclass
class Outcome:
    group: str
    name: str
    status: str  # pass, FAIL, skipped
    seconds: float
    peak_mb: float
    result: str

    def row(self) -> str:
        return (
            f"{self.group:18s} {self.name:34s} {self.status:7s} {self.seconds:7.1f} s "
            f"{self.peak_mb:9.1f} MB  {self.result}"
        )


def _checkpoints(kind: str) -> list:
    return [c for c in list_checkpoints(checkpoints_root()) if c.usable and c.kind == kind]


@lru_cache(maxsize=4)
def _lm(name: str, device: torch.device):
    """One load per checkpoint for the whole check (the first check that needs it pays)."""
    from tefviz.models import load_checkpoint

    return load_checkpoint(name, device=device)


def _lm_checks(device: torch.device) -> list[Check]:
    from tefviz.analysis import analyse_text
    from tefviz.data.heldout import heldout_text
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import SCORERS, baseline_names, get_scorer, tef_scorer
    from tefviz.text.tef import TEFHeads, tef_checkpoint_lm
    from tefviz.text.view import filter_text, score_text_tokens

    checks: list[Check] = []
    text = heldout_text()[:3000]
    for info in _checkpoints("lm"):

        def language_model(name=info.name) -> str:
            lm = _lm(name, device)
            a = analyse_text(lm, text)
            return (
                f"{len(a.ids)} tokens: perplexity {a.perplexity:.2f}, {a.bits_per_byte:.3f} bits/byte "
                f"({str(lm.dtype).removeprefix('torch.')})"
            )

        checks.append(Check("Language model", info.name, language_model))
        # every baseline under its own drop mode, and the first one under "skip" too (that path's check)
        runs = [(s, SCORERS[s].default_mode) for s in baseline_names()]
        runs.append((runs[0][0], "skip"))
        for scorer_name, policy in runs:
            cls = SCORERS[scorer_name]

            def baseline(name=info.name, s=scorer_name, p=policy, short=cls.max_tokens) -> str:
                lm = _lm(name, device)
                sample = text[: 4 * short] if short else text
                scored = score_text_tokens(lm, get_scorer(s), sample)
                f = filter_text(lm, get_scorer(s), scored, 0.7, DropPolicy(p))
                return (
                    f"{len(scored.ids)} tokens, t=0.7 ({p}): perplexity {scored.dense_perplexity:.2f} -> "
                    f"{f.perplexity:.2f}, kept {f.kept_fraction:.2f}"
                )

            checks.append(Check("Text", f"{info.name} / {scorer_name} ({policy})", baseline))
    for info in _checkpoints("tef"):

        def tef(path=info.path) -> str:
            heads = TEFHeads.load(path)  # on the policy's device, as the app loads them
            lm = _lm(tef_checkpoint_lm(path).name, device)
            scorer = tef_scorer(heads)
            policy = DropPolicy(scorer.default_mode)
            scored = score_text_tokens(lm, scorer, text)
            f = filter_text(lm, scorer, scored, 0.7, policy)
            return (
                f"{len(scored.ids)} tokens, t=0.7: perplexity {scored.dense_perplexity:.2f} -> "
                f"{f.perplexity:.2f}, kept {f.kept_fraction:.2f}"
            )

        checks.append(Check("Text", info.name, tef))
    return checks


def _attention_checks(device: torch.device, lengths: list[int]) -> list[Check]:
    from tefviz.attention.approx import APPROXIMATIONS
    from tefviz.attention.approx_view import compare
    from tefviz.attention.block_masks import block_mask_for, block_table, pattern_key
    from tefviz.attention.masks import dense_mask
    from tefviz.attention.on_model import qkv_at, run_pattern
    from tefviz.attention.patterns import build_pattern
    from tefviz.data.heldout import heldout_text

    lms = _checkpoints("lm")
    checks: list[Check] = []
    longest = max(lengths)

    def flex_at_length() -> str:
        from torch.nn.attention.flex_attention import flex_attention

        params = {"window": 256, "causal": 1}
        p = build_pattern("sliding", longest, **params)
        mask = block_mask_for(pattern_key(p.name, p.params), p.mask_mod, longest, device)
        q = torch.randn(1, 4, longest, 64, device=device)
        out = torch.compile(flex_attention, dynamic=False)(q, q, q, block_mask=mask)
        table = block_table(mask)
        return (
            f"sliding 256 causal at {longest:,} tokens: {table.computed_share:.2%} of tiles computed, "
            f"output finite: {bool(torch.isfinite(out).all())}"
        )

    checks.append(Check("Attention patterns", f"block mask + flex at {longest:,}", flex_at_length))
    if lms:
        name = lms[0].name

        def text_ids(lm) -> torch.Tensor:
            n = min(256, lm.context_length)
            return torch.tensor(
                lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"][:n], device=lm.device
            )

        def on_model() -> str:
            lm = _lm(name, device)
            ids = text_ids(lm)
            mask = dense_mask(build_pattern("sliding", len(ids), window=32, causal=1).mask_mod, len(ids))
            run = run_pattern(lm.model, ids, mask, None, 0)
            return (
                f"sliding 32 on every layer: perplexity {run.dense_perplexity:.2f} -> "
                f"{run.patterned_perplexity:.2f}"
            )

        def approximations() -> str:
            lm = _lm(name, device)
            q, k, v = qkv_at(lm.model, text_ids(lm), 0)
            size = min(64, q.shape[1])
            errs = [
                f"{m} {compare(q[0], k[0], v[0], m, size, False).relative_error:.3f}" for m in APPROXIMATIONS
            ]
            return f"layer 0 head 0, {q.shape[1]} tokens, size {size}: relative error " + ", ".join(errs)

        checks.append(Check("Attention patterns", f"{name} patterned", on_model))
        checks.append(Check("Efficient attention", f"{name} real q/k/v", approximations))
    return checks


def _embedding_checks(device: torch.device) -> list[Check]:
    from tefviz.data.heldout import heldout_text
    from tefviz.embeddings.compressors import COMPRESSORS
    from tefviz.embeddings.evaluate import evaluate_compression
    from tefviz.text.evaluate import windows_of

    lms = _checkpoints("lm")
    if not lms:
        return []
    name = lms[0].name

    def every_compressor() -> str:
        lm = _lm(name, device)
        wins = windows_of(
            lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"],
            min(256, lm.context_length),
            1,
        )
        parts = []
        for method in COMPRESSORS:
            r = evaluate_compression(lm.model, wins, method, {})
            parts.append(f"{method} {r.ratio:.1f}x/{r.perplexity / r.dense_perplexity:.2f}")
        return "bytes saved / perplexity ratio: " + ", ".join(parts)

    return [Check("Embeddings", f"{name} every compressor", every_compressor)]


def _image_checks(device: torch.device) -> list[Check]:
    from tefviz.images.checkpoint import load_image_classifier
    from tefviz.images.evaluate import eval_inputs, evaluate_setting, settings_for
    from tefviz.images.model import Selection
    from tefviz.images.view import analyse_image

    checks = []
    for info in _checkpoints("image"):

        def images(path=info.path) -> str:
            model = load_image_classifier(path, device)
            x, y = eval_inputs()
            a = analyse_image(model, x[0, 0].numpy(), Selection())
            settings = settings_for(model)
            row = evaluate_setting(model, x[:500], y[:500], settings[len(settings) // 2])
            return (
                f"{a.tokens_all} tokens, image 0 -> class {a.prediction_all}; 500 images at "
                f"{row['label']}: accuracy {row['accuracy']:.3f} with {row['mean_tokens']} tokens"
            )

        checks.append(Check("Images", info.name, images))
    return checks


def _bench_checks(
    device: torch.device, attention_lengths: list[int], approx_lengths: list[int], dtype: str, out_dir: Path
) -> list[Check]:
    from tefviz.attention.approx_bench import bench_approx
    from tefviz.attention.bench import bench_attention
    from tefviz.bench import bench_lm, bench_text
    from tefviz.images.bench import bench_images

    lms, tefs, imgs = _checkpoints("lm"), _checkpoints("tef"), _checkpoints("image")
    checks = []
    if lms:
        name = lms[0].name
        checks.append(
            Check(
                "bench", "bench lm", lambda: _lm_summary(bench_lm(name, out_dir / "bench_lm.json", repeats=3))
            )
        )
        causal = [t.path for t in tefs if (t.card or {}).get("variant") == "causal"][:1]
        checks.append(
            Check(
                "bench",
                "bench text",
                lambda: _text_summary(bench_text(name, causal, out_dir / "bench_text.json", repeats=3)),
            )
        )
    if imgs:
        checks.append(
            Check(
                "bench",
                "bench images",
                lambda: _images_summary(
                    bench_images(
                        [c.path for c in imgs],
                        out_dir / "bench_images.json",
                        repeats=2,
                        tables=device.type != "cpu",
                    )
                ),
            )
        )
    checks.append(
        Check(
            "bench",
            "bench attention",
            lambda: _attention_summary(
                bench_attention(
                    attention_lengths,
                    "sliding",
                    {"window": 256, "causal": 1},
                    repeats=3,
                    device=str(device),
                    dtype=dtype,
                    out=out_dir / "bench_attention.json",
                )
            ),
        )
    )
    checks.append(
        Check(
            "bench",
            "bench approx",
            lambda: _approx_summary(
                bench_approx(approx_lengths, device=str(device), repeats=3, out=out_dir / "bench_approx.json")
            ),
        )
    )
    return checks


def _lm_summary(r: dict) -> str:
    f = r["forward"]
    return (
        f"{r['tokens']} tokens: fp32 {f['float32']['median_s'] * 1e3:.1f} ms, bf16 "
        f"{f['bfloat16']['median_s'] * 1e3:.1f} ms; load {r['load_s']:.2f} s"
    )


def _text_summary(r: dict) -> str:
    dense = r["dense_forward"]["median_s"] * 1e3
    parts = [f"{k} {v['filtered_pass_t0.7']['median_s'] * 1e3:.1f} ms" for k, v in r["scorers"].items()]
    return f"{r['tokens']} tokens: dense {dense:.1f} ms; filtered " + ", ".join(parts)


def _images_summary(r: dict) -> str:
    return ", ".join(
        f"{k}: rerender {v['rerender_all_tokens_ms']:.0f} ms"
        + (f", table {v['eval_table_s']:.1f} s" if "eval_table_s" in v else "")
        for k, v in r["models"].items()
    )


def _attention_summary(r: dict) -> str:
    failed = [f"{x['impl']}@{x['n']}: {x['error']}" for x in r["runs"] if "error" in x]
    if failed:
        raise RuntimeError("; ".join(failed))
    by = {(x["impl"], x["n"]): x for x in r["runs"]}
    n = max(x["n"] for x in r["runs"])
    dense, flex = by.get(("dense_causal", n)), by.get(("flex", n))
    verdict = ""
    if dense and flex:
        speed = dense["median_s"] / flex["median_s"]
        mem = flex["peak_mb_over_inputs"] / max(dense["peak_mb_over_inputs"], 1e-9)
        verdict = (
            f"at {n:,}: flex {speed:.1f}x faster than dense causal SDPA, peak "
            f"{flex['peak_mb_over_inputs']:.0f} MB vs {dense['peak_mb_over_inputs']:.0f} MB "
            f"({mem:.1f}x)"
        )
        if n >= 65_536:  # the GPU goal: at least 20x faster with a peak within 2x of dense
            met = speed >= 20 and mem <= 2
            verdict += f"; goal (>= 20x, peak <= 2x) {'met' if met else 'NOT met'}"
    return verdict or json.dumps(r["speedups_vs_dense"])


def _approx_summary(r: dict) -> str:
    failed = [f"{x['method']}@{x['n']}: {x['error']}" for x in r["runs"] if "error" in x]
    if failed:
        raise RuntimeError("; ".join(failed))
    return "slopes of log time on log length: " + ", ".join(f"{m} {s}" for m, s in r["slopes"].items())


def _page_checks() -> list[Check]:
    try:
        from streamlit.testing.v1 import AppTest
    except ImportError:

        def not_installed() -> str:
            raise RuntimeError("Streamlit is not installed here: install requirements.txt to run the pages")

        return [Check("App page", "every page (AppTest)", not_installed)]
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.is_file():
        return []
    from ui.registry import PAGES

    checks = []
    for page in PAGES:

        def run_page(path=page.path) -> str:
            at = AppTest.from_file(str(app), default_timeout=300)
            at.switch_page(path)
            at.run()
            if at.exception:
                raise RuntimeError(at.exception[0].message)
            errors = [e.value for e in at.error]
            if errors:
                raise RuntimeError(errors[0][:200])
            return f"{len(at.metric)} metrics, no exception, no error box"

        checks.append(Check("App page", page.title, run_page))
    return checks


def default_lengths(device: torch.device) -> tuple[list[int], list[int]]:
    """Benchmark lengths: the issue's GPU goal lengths on a GPU, CPU-sized ones elsewhere."""
    if device.type == "cuda":
        return [4096, 16384, 65536], [1024, 4096, 16384, 65536]
    return [1024, 4096], [512, 2048, 8192]


def all_checks(
    device: torch.device,
    only: list[str] | None = None,
    attention_lengths: list[int] | None = None,
    approx_lengths: list[int] | None = None,
    dtype: str | None = None,
    out_dir: Path = Path("artifacts/check"),
) -> list[Check]:
    att, apx = default_lengths(device)
    dtype = dtype or str(pick_dtype(device)[0]).removeprefix("torch.")
    checks = (
        _lm_checks(device)
        + _image_checks(device)
        + _attention_checks(device, attention_lengths or att)
        + _embedding_checks(device)
        + _bench_checks(device, attention_lengths or att, approx_lengths or apx, dtype, out_dir)
        + _page_checks()
    )
    if only:  # "Text:" selects a page's checks, "bench: bench lm" one check, "tef" any that mention it
        checks = [c for c in checks if any(o.lower() in f"{c.group}: {c.name}".lower() for o in only)]
    return checks


def run_checks(
    checks: list[Check], device: torch.device, budget_s: float = 480, progress: Callable[[str], None] = print
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for check in checks:
        if time.perf_counter() - start > budget_s:
            outcomes.append(
                Outcome(
                    check.group, check.name, "skipped", 0.0, 0.0, f"the {budget_s:.0f} s budget was spent"
                )
            )
            continue
        t = time.perf_counter()
        mem = PeakMemory(device)
        try:
            with mem:
                result = check.run()
            status = "pass"
        except Exception as e:  # a check's failure is a row in the table, not the end of the run
            status = "FAIL"
            result = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            tb = traceback.format_exc().strip().splitlines()
            result += f" [{tb[-3].strip() if len(tb) >= 3 else ''}]"
        outcome = Outcome(check.group, check.name, status, round(time.perf_counter() - t, 2), mem.mb, result)
        outcomes.append(outcome)
        progress(outcome.row())
    return outcomes


def check_device(
    out: Path | None = Path("artifacts/check_device.json"),
    only: list[str] | None = None,
    budget_s: float = 480,
    attention_lengths: list[int] | None = None,
    approx_lengths: list[int] | None = None,
    dtype: str | None = None,
) -> dict:
    """Run every check on the policy's device; print the table; save JSON. Returns the report."""
    device = pick_device()
    where = describe_device(device, pick_dtype(device)[0])
    print(f"device check on {where}; budget {budget_s:.0f} s")
    started = time.perf_counter()
    out_dir = (out.parent if out else Path("artifacts")) / "check"
    checks = all_checks(device, only, attention_lengths, approx_lengths, dtype, out_dir)
    outcomes = run_checks(checks, device, budget_s)
    total = time.perf_counter() - started
    failed = [o for o in outcomes if o.status == "FAIL"]
    print()
    print(f"{'page / command':18s} {'check':34s} {'status':7s} {'time':>9s} {'peak':>12s}  result")
    peak = "the GPU allocator's" if device.type == "cuda" else "the process's peak resident set"
    print(f"(peak: {peak} during each check, over its level when the check started)")
    for o in outcomes:
        print(o.row())
    summary = (
        f"{sum(o.status == 'pass' for o in outcomes)} passed, {len(failed)} failed, "
        f"{sum(o.status == 'skipped' for o in outcomes)} skipped in {total:.0f} s on {where}"
    )
    print(summary)
    report = {
        "device": where,
        "seconds": round(total, 1),
        "summary": summary,
        "checks": [o.__dict__ for o in outcomes],
    }
    save_results(report, out)
    return report


def exit_code(report: dict) -> int:
    return 1 if any(c["status"] == "FAIL" for c in report["checks"]) else 0
