"""`python -m tefviz eval text`: the Table 1 analogue on the shipped held-out text."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tefviz.data.heldout import heldout_text
from tefviz.models import load_causal_lm
from tefviz.text.evaluate import ScorerRun, evaluate_scorers, windows_of
from tefviz.text.filtering import DropPolicy
from tefviz.text.scorers import get_scorer
from tefviz.text.tef import TEFHeads, tef_checkpoint_lm

BASELINES = (("uniform", "evict"), ("random", "evict"), ("attention", "evict"), ("attention", "skip"))


def eval_text(lm_name: str, tef_dirs: list[Path], out: Path, windows: int | None = None,
              block: int = 512, write_cards: bool = False) -> dict:
    lm = load_causal_lm(lm_name, dtype=torch.float32)  # the policy's device; fp32 for the table
    block = min(block, lm.context_length)
    ids = lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"]
    wins = windows_of(ids, block, windows)
    runs = [ScorerRun(f"{name} ({mode})", get_scorer(name), lm.model, DropPolicy(mode))
            for name, mode in BASELINES]
    for d in tef_dirs:
        heads = TEFHeads.load(d, lm.device)
        own_lm = tef_checkpoint_lm(d) == d  # the paper variant fine-tuned its own copy of the LM
        model = load_causal_lm(d, device=lm.device, dtype=torch.float32).model if own_lm else lm.model
        runs.append(ScorerRun(f"{d.name}", get_scorer(f"tef_{heads.config.variant}", heads=heads), model,
                              DropPolicy("zero" if heads.config.variant == "paper" else "evict")))
    table = evaluate_scorers(runs, lm.model, wins)
    table["lm"] = str(lm_name)
    table["text"] = "tefviz/assets/heldout_austen.json (Austen chapters from the test split)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1))
    _print(table)
    print(table_markdown(table))
    if write_cards:
        for d in tef_dirs:
            card_path = d / "card.json"
            card = json.loads(card_path.read_text())
            card.setdefault("metrics", {})["heldout_table"] = table
            card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False))
    return table


def _print(table: dict) -> None:
    ref = table["reference"]
    print(f"dense reference: perplexity {ref['perplexity']:.2f}, "
          f"{ref['windows']} windows of {ref['block']} tokens")
    header = "scorer".ljust(28) + "".join(f"t={t:<11}" for t in table["thresholds"])
    print(header)
    for label, group in table["scorers"].items():
        cells = "".join(f"{r['perplexity']:7.2f}/{r['kept_fraction']:.2f} " for r in group["rows"])
        print(label[:27].ljust(28) + cells)
    print("cells: perplexity / kept fraction of (query, key) pairs")


def table_markdown(table: dict) -> str:
    """The table as Markdown (perplexity, and kept fraction in parentheses), for the README."""
    ts = table["thresholds"]
    lines = ["| scorer (drop mode) | " + " | ".join(f"t = {t}" for t in ts) + " |",
             "|---|" + "---|" * len(ts)]
    for label, group in table["scorers"].items():
        cells = " | ".join(f"{r['perplexity']:.2f} ({r['kept_fraction']:.2f})" for r in group["rows"])
        name = label if label.endswith(f"({group['mode']})") else f"{label} ({group['mode']})"
        lines.append(f"| {name} | {cells} |")
    ref = table["reference"]
    lines.append(f"\nDense reference: perplexity {ref['perplexity']:.2f} on {ref['windows']} windows of "
                 f"{ref['block']} held-out tokens.")
    return "\n".join(lines)
