"""Check tefviz's KV-cache baselines against NVIDIA kvpress's presses, in a separate environment.

kvpress pins transformers<5.3 and this project runs transformers 5.23, so kvpress is read as the
reference and never imported by the project: it lives in its own virtual environment outside the
repository, and this script runs in three steps that exchange .npz files under artifacts/.

Set up the kvpress environment once (torch first: the pinned CPU wheel; an unpinned torch would
pull the CUDA packages, and naming it again keeps pip from replacing it):

    python3.11 -m venv /tmp/kvpress-venv
    /tmp/kvpress-venv/bin/pip install "torch==2.13.0"
    /tmp/kvpress-venv/bin/pip install kvpress "torch==2.13.0"

Run from the repository root, all steps at once:

    .venv/bin/python scripts/check_kvpress.py all --kvpress-python /tmp/kvpress-venv/bin/python

or one by one (each takes --texts, --tokens and --out-dir; the defaults are the same):

    .venv/bin/python scripts/check_kvpress.py tefviz                   # artifacts/kvpress_check_tefviz.npz
    /tmp/kvpress-venv/bin/python scripts/check_kvpress.py kvpress      # artifacts/kvpress_check_kvpress.npz
    .venv/bin/python scripts/check_kvpress.py compare                  # table + artifacts/kvpress_check.json

What is compared, per held-out text (the first --tokens tokens of a shipped sample, tokenised as
`eval text` does, without special tokens), per method and per layer of checkpoints/tefviz-llama:

- kvpress: the press's own `score(...)` on the keys, values, attention (eager) and hidden states
  its forward hook receives in a prefill of the prompt (a press subclass records them through
  BasePress.forward_hook, so the inputs are exactly those `compress` gets), and the keys its own
  `compress` keeps, per key head, at compression ratios 0.5 and 0.8 (50 % and 20 % kept).
- tefviz: the scorer's `score(...)` read for the LAST query (it scores per query, causally; the
  last query sees the whole prompt, as a prefill press does), and the keys the scorer's own
  `filtered(...)` keeps for the last query under the default "evict" policy. tefviz's t is a
  share threshold, not a budget, so per layer the t is searched at which the last query keeps
  as many keys as kvpress keeps (the masked forward `filtered` runs after building its masks is
  skipped during the search: only the masks are read).

Metrics: Spearman correlation of the two score vectors after the same head aggregation (kvpress's
per-key-head scores averaged over key heads; tefviz averages over query heads, the same mean as
key heads are shared by equal groups), over the keys both score (the always-kept tail, a
window or the last token, is left out); and the overlap |A ∩ B| / |A| of the kept sets, A being
kvpress's (top-k of the head-averaged scores, and, separately, its real per-head sets averaged
over heads) and B tefviz's. Sanity checks: both steps tokenise to the same ids and read the same
attention and key norms from the model (two transformers versions).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tefviz" / "assets"
CHECKPOINT = ROOT / "checkpoints" / "tefviz-llama"
OUT_DIR = ROOT / "artifacts"
TEXTS = ("austen", "genesis", "debref", "gcide")
RATIOS = (0.5, 0.8)  # kvpress compression ratios: 50 % and 20 % of the keys kept

# name: tefviz scorer (registry name, kwargs), kvpress press (class name, kwargs), and how many
# of the last keys are left out of the Spearman correlation (what one side always keeps there)
METHODS: dict[str, dict] = {
    "streaming_llm": {"tefviz": ("streaming_llm", {}), "kvpress": ("StreamingLLMPress", {}), "tail": 0},
    "h2o": {"tefviz": ("h2o", {}), "kvpress": ("ObservedAttentionPress", {}), "tail": 0},
    "tova": {"tefviz": ("tova", {}), "kvpress": ("TOVAPress", {}), "tail": 1},
    "snapkv": {"tefviz": ("snapkv", {}), "kvpress": ("SnapKVPress", {}), "tail": 64},
    "snapkv_w32_k7": {  # tefviz's window and kernel in kvpress: only the pooling kind differs
        "tefviz": ("snapkv", {}),
        "kvpress": ("SnapKVPress", {"window_size": 32, "kernel_size": 7}),
        "tail": 32,
    },
    "snapkv_w64_k5_avg": {  # kvpress's defaults in tefviz
        "tefviz": ("snapkv", {"window": 64, "kernel": 5, "pooling": "avg"}),
        "kvpress": ("SnapKVPress", {}),
        "tail": 64,
    },
    "key_norm": {"tefviz": ("key_norm", {}), "kvpress": ("KnormPress", {}), "tail": 0},
}
NO_ATTENTION_PATH = ("tova", "snapkv", "snapkv_w32_k7")  # kvpress also scores these without attention


def n_kept(n: int, ratio: float) -> int:
    """kvpress's `compute_n_kept`."""
    return max(1, int(n * (1 - ratio)))


def sample_text(name: str) -> str:
    """A shipped held-out sample as `tefviz.data.heldout.sample_text` joins it."""
    payload = json.loads((ASSETS / f"heldout_{name}.json").read_text(encoding="utf-8"))
    return "\n\n".join(s["text"] for s in payload["samples"])


def prompt_ids(tokenizer, name: str, n: int) -> list[int]:
    ids = tokenizer(sample_text(name), add_special_tokens=False)["input_ids"][:n]
    if len(ids) < n:
        raise SystemExit(f"{name}: only {len(ids)} tokens, fewer than --tokens {n}")
    return ids


def save(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    print(f"wrote {path}")


def load(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("meta"))), arrays


# --- step 1: tefviz (the project's venv) --------------------------------------------------------


@contextlib.contextmanager
def masks_only(vocab: int):
    """Skip the masked forward `filtered` runs after building its keep masks (only the masks are
    read here); a module that no longer calls it just runs the real forward."""
    import types
    from unittest import mock

    import torch

    import tefviz.text.filtering as filtering
    import tefviz.text.scorers.kv_common as kv_common

    def stub(model, ids, *args, **kwargs):
        return types.SimpleNamespace(logits=torch.zeros(*ids.shape, vocab))

    with contextlib.ExitStack() as stack:
        for module in (filtering, kv_common):
            if hasattr(module, "masked_forward"):
                stack.enter_context(mock.patch.object(module, "masked_forward", stub))
        yield


def last_query_rows(values, n_layer: int):
    """(L, n): the scores the last query gives each key, per layer."""
    rows = values[:, -1, :] if values.dim() == 3 else values
    return rows.expand(n_layer, -1) if rows.shape[0] == 1 else rows


def matched_keep(scorer, model, ids, scores, policy, k: int, n_layer: int):
    """(L, n) bool and (L,) t: per layer, the keys the last query keeps at the smallest t (between
    two successive cumulative shares of its ranked scores) at which it keeps at least k keys."""
    import torch

    rows = last_query_rows(scores.values.float().cpu(), n_layer)
    n = rows.shape[-1]
    keep = torch.zeros(n_layer, n, dtype=torch.bool)
    ts = []
    vocab = int(ids.max()) + 1
    for layer in range(n_layer):
        s = rows[layer].double().clamp_min(0)
        cum = (s.sort(descending=True).values / s.sum().clamp_min(1e-300)).cumsum(0)
        cand = [0.0, *((cum[:-1] + cum[1:]) / 2).clamp(max=1 - 1e-9).tolist()]  # keeps the top m
        masks: dict[int, torch.Tensor] = {}

        def mask(i: int, layer=layer, cand=cand, masks=masks):
            if i not in masks:
                with masks_only(vocab):
                    fp = scorer.filtered(model, ids, scores, cand[i], policy)
                masks[i] = fp.masks.keys[layer, -1, :].cpu().clone()
            return masks[i]

        # cand[m] keeps the top m keys (at least one) and the forced ones, so at least m keys:
        # the answer lies at or below m = k; gallop down from there, then bisect
        hi = min(k, len(cand) - 1)
        step, lo = 1, None
        while lo is None and hi > 0:
            probe = max(0, hi - step)
            if int(mask(probe).sum()) >= k:
                hi, step = probe, 2 * step
            else:
                lo = probe
        while lo is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            if int(mask(mid).sum()) >= k:
                hi = mid
            else:
                lo = mid
        keep[layer] = mask(hi)
        ts.append(cand[hi])
    return keep, ts


def tefviz_step(args) -> None:
    sys.path.insert(0, str(ROOT))
    import torch
    import transformers

    from tefviz.data.heldout import sample_text as tefviz_sample_text
    from tefviz.models import load_causal_lm
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import get_scorer
    from tefviz.text.scorers.kv_common import head_mean_attention, key_norms

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    lm = load_causal_lm(args.checkpoint, device="cpu", dtype=torch.float32)
    model = lm.model
    n_layer = model.config.num_hidden_layers
    policy = DropPolicy()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "step": "tefviz",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "commit": commit,
        "checkpoint": str(args.checkpoint),
        "policy": {"mode": policy.mode, "sink": policy.sink, "recent": policy.recent},
        "tokens": args.tokens,
        "texts": list(args.texts),
        "ratios": list(RATIOS),
        "t": {},
    }
    arrays: dict[str, np.ndarray] = {}
    for text in args.texts:
        assert tefviz_sample_text(text) == sample_text(text)
        ids = torch.tensor(prompt_ids(lm.tokenizer, text, args.tokens))
        n = ids.numel()
        arrays[f"{text}__ids"] = ids.numpy()
        arrays[f"{text}__attn_last"] = head_mean_attention(model, ids)[:, -1].numpy()
        arrays[f"{text}__key_norm"] = key_norms(model, ids).mean(1).numpy()
        for method, spec in METHODS.items():
            name, kwargs = spec["tefviz"]
            scorer = get_scorer(name, **kwargs)
            scores = scorer.score(model, ids)
            arrays[f"{text}__{method}__score"] = last_query_rows(scores.values.float().cpu(), n_layer).numpy()
            for ratio in RATIOS:
                keep, ts = matched_keep(scorer, model, ids, scores, policy, n_kept(n, ratio), n_layer)
                arrays[f"{text}__{method}__keep{ratio}"] = keep.numpy()
                meta["t"][f"{text}/{method}/{ratio}"] = ts
            print(f"tefviz: {text} {method}", flush=True)
    save(args.out_dir / "kvpress_check_tefviz.npz", meta, arrays)


# --- step 2: kvpress (its own venv) -------------------------------------------------------------


def kvpress_step(args) -> None:
    from importlib.metadata import version

    import kvpress
    import torch
    import transformers
    from kvpress.presses.base_press import BasePress
    from kvpress.utils import compute_n_kept
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()

    class Probe(BasePress):
        """Records, per layer, each press's scores and kept keys on the inputs BasePress's forward
        hook hands to `compress`, and leaves the cache as it is."""

        def __init__(self, presses: dict[str, dict[float, BasePress]]) -> None:
            self.presses = presses
            self.records: dict[str, np.ndarray] = {}

        def post_init_from_model(self, model) -> None:
            for by_ratio in self.presses.values():
                for press in by_ratio.values():
                    press.post_init_from_model(model)

        def put(self, key: str, layer: int, value) -> None:
            self.records.setdefault(key, {})[layer] = value

        def compress(self, module, hidden_states, keys, values, attentions, kwargs):
            layer, k_len = module.layer_idx, keys.shape[2]
            # values carrying their position: what a press's compress keeps is read off them
            pos = torch.arange(k_len, dtype=torch.float32).view(1, 1, -1, 1).expand_as(values).contiguous()
            for method, by_ratio in self.presses.items():
                for ratio, press in by_ratio.items():
                    s = press.score(module, hidden_states, keys, values, attentions, kwargs)[0].float()
                    _, kept = press.compress(module, hidden_states, keys, pos, attentions, kwargs)
                    self.put(f"{method}__score{ratio}", layer, s.numpy())
                    self.put(f"{method}__heads{ratio}", layer, kept[0, :, :, 0].long().numpy())
                    top = s.mean(0).topk(compute_n_kept(k_len, ratio)).indices
                    self.put(f"{method}__top{ratio}", layer, top.numpy())
            if attentions is not None:
                self.put("attn_last", layer, attentions[0, :, -1].float().mean(0).numpy())
            self.put("key_norm", layer, keys[0].float().norm(dim=-1).mean(0).numpy())
            return keys, values

    def presses(methods) -> dict[str, dict[float, BasePress]]:
        out = {}
        for method in methods:
            cls_name, kwargs = METHODS[method]["kvpress"]
            cls = getattr(kvpress, cls_name)
            out[method] = {r: cls(compression_ratio=r, **kwargs) for r in RATIOS}
        return out

    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    models = {
        impl: AutoModelForCausalLM.from_pretrained(
            args.checkpoint, attn_implementation=impl, dtype=torch.float32
        )
        .eval()
        .requires_grad_(False)
        for impl in ("eager", "sdpa")
    }
    meta = {
        "step": "kvpress",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "kvpress": version("kvpress"),
        "tokens": args.tokens,
        "texts": list(args.texts),
        "ratios": list(RATIOS),
        "methods": {m: {"press": s["kvpress"][0], "kwargs": s["kvpress"][1]} for m, s in METHODS.items()},
    }
    arrays: dict[str, np.ndarray] = {}
    for text in args.texts:
        ids = torch.tensor(prompt_ids(tokenizer, text, args.tokens))
        arrays[f"{text}__ids"] = ids.numpy()
        # eager: the attention every press may read; sdpa: no attention, so TOVA and SnapKV
        # recompute the window's attention from the queries themselves (their other code path)
        for impl, methods, suffix in (("eager", list(METHODS), ""), ("sdpa", NO_ATTENTION_PATH, "__sdpa")):
            probe = Probe(presses(methods))
            with torch.no_grad(), probe(models[impl]):
                models[impl](input_ids=ids[None], past_key_values=DynamicCache(), use_cache=True)
            for key, by_layer in probe.records.items():
                if suffix and key in ("attn_last", "key_norm"):
                    continue
                arrays[f"{text}__{key}{suffix}"] = np.stack([by_layer[i] for i in sorted(by_layer)])
        print(f"kvpress: {text}", flush=True)
    save(args.out_dir / "kvpress_check_kvpress.npz", meta, arrays)


# --- step 3: compare (numpy only) --------------------------------------------------------------


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (scipy's default)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse = np.unique(x, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    ra, rb = rankdata(np.asarray(a, float)), rankdata(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return None  # a constant score ranks nothing
    return float(np.corrcoef(ra, rb)[0, 1])


def overlap(kept: np.ndarray, keep: np.ndarray) -> float:
    """|A ∩ B| / |A| for indices A and a boolean mask B."""
    return float(keep[kept].mean())


def stats(values: list) -> dict:
    v = [x for x in values if x is not None]
    return {"mean": float(np.mean(v)), "min": float(np.min(v))} if v else {"mean": None, "min": None}


def fmt(x, digits: int = 3) -> str:
    return "  n/a" if x is None else f"{x:.{digits}f}"


def compare_step(args) -> dict:
    tmeta, tef = load(args.out_dir / "kvpress_check_tefviz.npz")
    kmeta, kvp = load(args.out_dir / "kvpress_check_kvpress.npz")
    report: dict = {
        "versions": {
            "tefviz_env": {k: tmeta[k] for k in ("python", "torch", "transformers", "commit")},
            "kvpress_env": {k: kmeta[k] for k in ("python", "torch", "transformers", "kvpress")},
        },
        "checkpoint": tmeta["checkpoint"],
        "tokens": tmeta["tokens"],
        "tefviz_policy": tmeta["policy"],
        "ratios": {str(r): f"{round(100 * (1 - r))} % kept" for r in RATIOS},
        "methods": {
            m: {"tefviz": s["tefviz"], "kvpress": s["kvpress"], "spearman_leaves_out_last": s["tail"]}
            for m, s in METHODS.items()
        },
        "sanity": {},
        "per_text": {},
        "summary": {},
    }
    texts = [t for t in tmeta["texts"] if t in kmeta["texts"]]
    per_method: dict[str, dict[str, list]] = {m: {} for m in METHODS}
    for text in texts:
        ids_t, ids_k = tef[f"{text}__ids"], kvp[f"{text}__ids"]
        if not np.array_equal(ids_t, ids_k):
            raise SystemExit(f"{text}: the two environments tokenise differently")
        n = len(ids_t)
        attn_diff = float(np.abs(tef[f"{text}__attn_last"] - kvp[f"{text}__attn_last"]).max())
        norm_rel = tef[f"{text}__key_norm"] / kvp[f"{text}__key_norm"] - 1
        report["sanity"][text] = {
            "tokens": n,
            "same_ids": True,
            "max_abs_diff_last_query_attention": attn_diff,
            "max_rel_diff_key_norm": float(np.abs(norm_rel).max()),
        }
        report["per_text"][text] = {}
        for method, spec in METHODS.items():
            s_t = tef[f"{text}__{method}__score"]  # (L, n)
            layers = []
            for layer in range(s_t.shape[0]):
                common = slice(0, n - spec["tail"])
                s_k = kvp[f"{text}__{method}__score{RATIOS[0]}"][layer].mean(0)  # head-averaged
                row = {"layer": layer, "spearman": spearman(s_t[layer][common], s_k[common])}
                if method == "h2o":  # kvpress divides by the number of queries that saw each key
                    row["spearman_kvpress_times_count"] = spearman(
                        s_t[layer][common], (s_k * np.arange(n, 0, -1))[common]
                    )
                if method in NO_ATTENTION_PATH:
                    sdpa = kvp[f"{text}__{method}__score{RATIOS[0]}__sdpa"][layer].mean(0)
                    row["kvpress_no_attention_path_max_abs_diff"] = float(np.abs(sdpa - s_k).max())
                for ratio in RATIOS:
                    keep = tef[f"{text}__{method}__keep{ratio}"][layer]
                    heads = kvp[f"{text}__{method}__heads{ratio}"][layer]
                    row[f"kept_tefviz_{ratio}"] = int(keep.sum())
                    row[f"kept_kvpress_{ratio}"] = n_kept(n, ratio)
                    row[f"overlap_{ratio}"] = overlap(kvp[f"{text}__{method}__top{ratio}"][layer], keep)
                    row[f"overlap_per_head_{ratio}"] = float(np.mean([overlap(h, keep) for h in heads]))
                    top = set(kvp[f"{text}__{method}__top{ratio}"][layer].tolist())
                    mine = set(np.flatnonzero(keep).tolist())
                    row[f"only_tefviz_{ratio}"] = sorted(mine - top)[:8]  # the first 8 positions
                    row[f"only_kvpress_{ratio}"] = sorted(top - mine)[:8]
                layers.append(row)
                for key, value in row.items():
                    if key != "layer":
                        per_method[method].setdefault(key, []).append(value)
            summary = {
                key: stats([r[key] for r in layers])
                for key in layers[0]
                if key != "layer" and not key.startswith(("kept_", "only_"))
            }
            report["per_text"][text][method] = {"layers": layers, "summary": summary}
    report["summary"] = {
        m: {k: stats(v) for k, v in d.items() if not k.startswith(("kept_", "only_"))}
        for m, d in per_method.items()
    }
    report["kept_counts_match"] = all(
        r[f"kept_tefviz_{ratio}"] == r[f"kept_kvpress_{ratio}"]
        for text in report["per_text"].values()
        for m in text.values()
        for r in m["layers"]
        for ratio in RATIOS
    )
    print_tables(report, texts)
    path = args.out_dir / "kvpress_check.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return report


def print_tables(report: dict, texts: list[str]) -> None:
    te, kv = report["versions"]["tefviz_env"], report["versions"]["kvpress_env"]
    print(f"tefviz env: torch {te['torch']}, transformers {te['transformers']}, commit {te['commit'][:10]}")
    print(f"kvpress env: kvpress {kv['kvpress']}, torch {kv['torch']}, transformers {kv['transformers']}")
    for text, s in report["sanity"].items():
        attn, norm = s["max_abs_diff_last_query_attention"], s["max_rel_diff_key_norm"]
        print(
            f"sanity {text}: {s['tokens']} tokens, same ids in both envs; last-query attention "
            f"max |diff| {attn:.1e}; key norm max rel diff {norm:.1e}"
        )
    r0, r1 = RATIOS
    keys = ("spearman", f"overlap_{r0}", f"overlap_{r1}", f"overlap_per_head_{r0}", f"overlap_per_head_{r1}")
    titles = ("Spearman", "overlap 50%", "overlap 20%", "per-head 50%", "per-head 20%")
    head = f"{'method':<18} {'text':<8} " + " ".join(f"{t:>15}" for t in titles)
    print("\nmean / min over layers (overlap = |kvpress kept ∩ tefviz kept| / |kvpress kept|)")
    print(head)
    print("-" * len(head))
    for method in METHODS:
        for text in [*texts, "all"]:
            s = report["summary"][method] if text == "all" else report["per_text"][text][method]["summary"]
            cells = [f"{fmt(s[k]['mean'])} / {fmt(s[k]['min'])}" for k in keys]
            print(f"{method:<18} {text:<8} " + " ".join(f"{c:>15}" for c in cells))
        extra = report["summary"][method]
        if "spearman_kvpress_times_count" in extra:
            sp = extra["spearman_kvpress_times_count"]
            mean_min = f"{fmt(sp['mean'])} / {fmt(sp['min'])}"
            print(f"{'':<18} Spearman with kvpress's mean times the number of queries: {mean_min}")
        if "kvpress_no_attention_path_max_abs_diff" in extra:
            d = extra["kvpress_no_attention_path_max_abs_diff"]["mean"]
            print(f"{'':<18} kvpress's scores without attention (sdpa) vs with (eager): max |diff| {d:.1e}")
    print("\nper layer 0..5: Spearman|overlap 50%|overlap 20%")
    for text in texts:
        for method in METHODS:
            layers = report["per_text"][text][method]["layers"]
            cells = [
                f"{fmt(r['spearman'], 2)}|{r[f'overlap_{r0}']:.2f}|{r[f'overlap_{r1}']:.2f}" for r in layers
            ]
            print(f"{method:<18} {text:<8} " + " ".join(cells))
    print(f"\ntefviz kept exactly as many keys as kvpress in every case: {report['kept_counts_match']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("tefviz", "kvpress", "compare", "all"))
    p.add_argument("--texts", nargs="+", default=list(TEXTS), choices=TEXTS)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tefviz-python", default=sys.executable, help="for 'all': the project's python")
    p.add_argument("--kvpress-python", default="/tmp/kvpress-venv/bin/python", help="for 'all'")
    args = p.parse_args()
    if args.step == "tefviz":
        tefviz_step(args)
    elif args.step == "kvpress":
        kvpress_step(args)
    elif args.step == "compare":
        compare_step(args)
    else:
        common = ["--texts", *args.texts, "--tokens", str(args.tokens), "--checkpoint", str(args.checkpoint)]
        common += ["--out-dir", str(args.out_dir), "--threads", str(args.threads)]
        for python, step in ((args.tefviz_python, "tefviz"), (args.kvpress_python, "kvpress")):
            subprocess.run([python, __file__, step, *common], check=True)
        compare_step(args)


if __name__ == "__main__":
    main()
