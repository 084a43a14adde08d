"""`python -m tefviz eval approx`: each approximation's error on the embedded LM's real queries, keys
and values (every layer and head of a held-out text), the numbers the Efficient attention page shows
one head at a time."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tefviz.attention.approx_view import error_sweep
from tefviz.attention.on_model import qkv_at
from tefviz.data.heldout import heldout_text
from tefviz.lm import model_parts
from tefviz.models import load_causal_lm


@torch.no_grad()
def eval_approx(
    lm_name: str, out: Path | None, tokens: int = 256, sizes: tuple[int, ...] = (16, 64, 256), seeds: int = 3
) -> dict:
    lm = load_causal_lm(lm_name, dtype=torch.float32)  # the policy's device; fp32 for the errors
    n = min(tokens, lm.context_length)
    ids = lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"][:n]
    ids = torch.tensor(ids, device=lm.device)
    rows: list[dict] = []
    cases = [(layer, causal) for layer in range(model_parts(lm.model).n_layer) for causal in (False, True)]
    for layer, causal in tqdm(cases, desc="eval approx"):
        q, k, v = qkv_at(lm.model, ids, layer)
        for head in range(q.shape[0]):
            for r in error_sweep(q[head], k[head], v[head], causal, sizes, seeds):
                rows.append({"layer": layer, "head": head, "causal": causal, **r})
    summary: dict = {}
    for r in rows:
        key = f"{r['method']} size={r['size']} {'causal' if r['causal'] else 'non-causal'}"
        summary.setdefault(key, []).append(r["relative_error"])
    table = {
        k: {"mean_relative_error": round(sum(v) / len(v), 4), "max": round(max(v), 4), "heads": len(v)}
        for k, v in summary.items()
    }
    result = {
        "lm": str(lm_name),
        "tokens": n,
        "text": "held-out Austen (shipped sample)",
        "seeds": seeds,
        "summary": table,
        "rows": rows,
    }
    for k, v in table.items():
        print(
            f"{k:40s} relative output error {v['mean_relative_error']:.4f} (max {v['max']:.4f}, "
            f"{v['heads']} heads)"
        )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"saved {out}")
    return result
