"""`python -m tefviz eval generate`: generation with an evicted KV cache on several texts, with paired
intervals. `bench generate` times one prompt; this asks which policy keeps generation closest to
dense, and where.

Per text, `prompts` windows of `prompt_tokens` tokens spread over it; after each, every policy decodes
`new_tokens` greedily with its cache evicted to the same `budget` of entries per layer (default: half
the prompt), and the dense model reads the evicted run's own tokens: the score of a (policy, prompt) is
the mean per-step KL(dense || evicted) over the new tokens. A method against the best baseline (the
lowest geometric mean KL over the text's prompts): the ratio of geometric means with a 95 %
t-interval over prompts on the per-prompt log KL ratio (paired: the same prompts), and prompts won.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tefviz.bench import save_results
from tefviz.errors import InputError
from tefviz.generate.evicted import SINKS, generate_evicted, kl_summary
from tefviz.text.evaluate import paired_ratio

BASELINE_POLICIES = ("streaming_llm", "h2o", "tova", "key_norm")
KL_FLOOR = 1e-9  # a run identical to dense has KL 0; its log needs a floor


def prompt_windows(ids: list[int], prompt_tokens: int, prompts: int) -> list[list[int]]:
    """`prompts` windows of `prompt_tokens` tokens, evenly spread and not overlapping (the first at
    the start, the last at the end), or InputError when the text is too short for them."""
    if prompts < 1:
        raise InputError(f"--prompts must be at least 1, got {prompts}")
    if len(ids) < prompts * prompt_tokens:
        raise InputError(
            f"{len(ids)} tokens, fewer than {prompts} prompts of {prompt_tokens}; "
            "use a longer text, fewer --prompts or shorter --prompt-tokens"
        )
    if prompts == 1:
        return [ids[:prompt_tokens]]
    step = (len(ids) - prompt_tokens) / (prompts - 1)
    return [ids[round(i * step) : round(i * step) + prompt_tokens] for i in range(prompts)]


def compare_policies(runs: dict[str, list[dict]], baselines: tuple[str, ...]) -> dict:
    """Every policy against the best baseline of these prompts: {"best", "methods": {policy: ...}}."""
    logs = {p: [math.log(max(r["mean_kl"], KL_FLOOR)) for r in rs] for p, rs in runs.items()}
    present = [p for p in baselines if p in logs]
    if not present:
        return {}
    best = min(present, key=lambda p: sum(logs[p]))
    return {
        "best": best,
        "methods": {
            p: {
                **paired_ratio(logs[p], logs[best]),
                "geo_mean_kl": math.exp(sum(logs[p]) / len(logs[p])),
                "diverged_at": [r["diverged_at"] for r in runs[p]],
            }
            for p in logs
        },
    }


def eval_generate(
    lm_name: str,
    tef_dirs: list[Path],
    out: Path | None,
    samples: list[str] | tuple[str, ...] = (),
    text_files: list[Path] | tuple = (),
    prompts: int = 4,
    prompt_tokens: int = 384,
    new_tokens: int = 64,
    budget: int | None = None,
) -> dict:
    """Each text's prompts decoded by every baseline policy and each causal TEF at one cache budget;
    writes {"lm", "budget_per_layer", ..., "texts": [{"name", "runs", "comparison"}]} to `out`."""
    from tefviz.errors import CheckpointError
    from tefviz.lm.parts import model_parts
    from tefviz.models import load_causal_lm
    from tefviz.text.cli_eval import texts_to_evaluate
    from tefviz.text.tef import TEFHeads

    texts = texts_to_evaluate(samples, text_files)  # bad files fail before any model is loaded
    lm = load_causal_lm(lm_name, dtype=torch.float32)
    if prompt_tokens + new_tokens > lm.context_length:
        raise InputError(
            f"--prompt-tokens {prompt_tokens} + --new-tokens {new_tokens} exceed the model's context "
            f"of {lm.context_length}"
        )
    budget = budget or prompt_tokens // 2
    if not SINKS + 2 <= budget <= prompt_tokens:
        raise InputError(f"--budget must lie between {SINKS + 2} and the prompt's {prompt_tokens} tokens")
    policies: dict[str, tuple[str, object]] = {p: (p, None) for p in BASELINE_POLICIES}
    for d in tef_dirs:
        heads = TEFHeads.load(Path(d), lm.device)
        if heads.config.variant != "causal":
            raise InputError(f"{Path(d).name}: only a causal TEF can evict a cache while generating")
        parts = model_parts(lm.model)
        if (parts.n_layer, parts.d_model) != (heads.config.n_layer, heads.config.d_model):
            raise CheckpointError(f"{Path(d).name} was trained for another model than {lm.name}")
        policies[Path(d).name] = ("tef_causal", heads)
    windows = [
        prompt_windows(lm.tokenizer(t.text, add_special_tokens=False)["input_ids"], prompt_tokens, prompts)
        for t in texts
    ]
    result = {
        "lm": lm.name,
        "device": str(lm.device),
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "budget_per_layer": budget,
        "prompts_per_text": prompts,
        "baselines": list(BASELINE_POLICIES),
        "interval": "95 % t-interval over prompts on the per-prompt log mean-KL ratio (paired)",
        "texts": [],
    }
    bar = tqdm(total=len(texts) * prompts * len(policies), desc="eval generate")
    for item, ws in zip(texts, windows, strict=True):
        runs: dict[str, list[dict]] = {name: [] for name in policies}
        for ids in ws:
            for name, (policy, heads) in policies.items():
                g = generate_evicted(
                    lm.model, ids, policy, max_new_tokens=new_tokens, budget=budget, heads=heads
                )
                s = kl_summary(g)
                runs[name].append({k: s[k] for k in ("mean_kl", "max_kl", "diverged_at")})
                bar.update()
        table = {
            "name": item.name,
            "description": item.description,
            "domain": item.domain,
            "runs": runs,
            "comparison": compare_policies(runs, BASELINE_POLICIES),
        }
        result["texts"].append(table)
        _print(table, result)
    bar.close()
    save_results(result, out)
    return result


def _print(table: dict, result: dict) -> None:
    c = table["comparison"]
    print(
        f"\n{table['name']}: {result['prompts_per_text']} prompts of {result['prompt_tokens']} tokens, "
        f"{result['new_tokens']} new, cache {result['budget_per_layer']} entries per layer; best baseline "
        f"{c['best']}"
    )
    for name, m in c["methods"].items():
        interval = f"({m['low']:.3f}-{m['high']:.3f})" if not math.isnan(m["low"]) else "(one prompt)"
        print(
            f"  {name:36s} mean KL {m['geo_mean_kl']:.4f}  / best {m['ratio']:.3f} {interval}  "
            f"won {m['wins']}/{m['windows']}  diverged at {m['diverged_at']}"
        )
