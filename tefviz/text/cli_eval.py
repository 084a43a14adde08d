"""`python -m tefviz eval text`: the Table 1 analogue on the shipped held-out samples or any text
file, with per-window paired comparisons against the best baseline."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from tefviz.data.heldout import SAMPLE_FILES, list_samples, sample_text
from tefviz.errors import InputError
from tefviz.models import load_causal_lm
from tefviz.text.evaluate import (
    CI_METHOD,
    KEPT_FRACTIONS,
    THRESHOLDS,
    ScorerRun,
    evaluate_scorers,
    paired_comparisons,
    windows_of,
)
from tefviz.text.filtering import DropPolicy
from tefviz.text.scorers import get_scorer
from tefviz.text.tef import TEFHeads, tef_checkpoint_lm

BASELINES = (
    ("uniform", "evict"),
    ("random", "evict"),
    ("attention", "evict"),
    ("attention", "skip"),
    ("streaming_llm", "evict"),
    ("h2o", "evict"),
    ("tova", "evict"),
    ("snapkv", "evict"),
    ("key_norm", "evict"),
)
AUSTEN_DESCRIPTION = "tefviz/assets/heldout_austen.json (Austen chapters from the test split)"


@dataclass(frozen=True)
class TextToEvaluate:
    name: str  # the shipped sample's name, or the file's name
    text: str
    description: str
    domain: str | None = None
    sample: bool = True  # a shipped sample (its table may go into TEF cards)


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's text, or a clear InputError (missing, a directory, not UTF-8, empty)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"--text-file {path}: no such file")
    if not path.is_file():
        raise InputError(f"--text-file {path}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"--text-file {path}: cannot be read ({e.strerror})") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"--text-file {path} is not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); "
            "convert it first, e.g. with iconv -t UTF-8"
        ) from e
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError(f"--text-file {path} is empty: there is nothing to evaluate")
    return text


def texts_to_evaluate(
    samples: list[str] | tuple[str, ...] = (), text_files: list[Path] | tuple = ()
) -> list[TextToEvaluate]:
    """The shipped samples named (all of them for "all"; Austen when nothing is named), then the files."""
    names = list(samples) if samples or text_files else ["austen"]
    if "all" in names:
        names = list(SAMPLE_FILES)
    info = {s.name: s for s in list_samples()}
    out = []
    for name in dict.fromkeys(names):
        if name not in info:
            raise InputError(f"unknown sample {name!r}; choose one of {[*SAMPLE_FILES, 'all']}")
        s = info[name]
        description = (
            AUSTEN_DESCRIPTION
            if name == "austen"
            else (f"tefviz/assets/{s.path.name} ({s.title}: {s.source}; {s.licence})")
        )
        out.append(TextToEvaluate(name, sample_text(name), description, s.domain))
    for path in text_files:
        out.append(TextToEvaluate(Path(path).name, read_text_file(path), str(path), None, sample=False))
    return out


def eval_text(
    lm_name: str,
    tef_dirs: list[Path],
    out: Path,
    windows: int | None = None,
    block: int = 512,
    write_cards: bool = False,
    samples: list[str] | tuple[str, ...] = (),
    text_files: list[Path] | tuple = (),
    budget: bool = False,
) -> dict:
    """Evaluate dense, every baseline and each TEF on each text. Writes `out`: with one text, its
    table (the format of the cards and the README); with several, {"lm", "texts": [table, ...]}.
    Each table also holds per-window losses and "comparisons" (`paired_comparisons`).

    budget: every method keeps the same fraction of each query's prefix (`KEPT_FRACTIONS`, a fixed
    cache budget, as KV-cache papers and kvpress compare) instead of a share t of its own scores;
    only the "evict" rows run (the others drop whole tokens, which a cache budget does not describe).
    """
    texts = texts_to_evaluate(samples, text_files)  # bad files fail before any model is loaded
    lm = load_causal_lm(lm_name, dtype=torch.float32)  # the policy's device; fp32 for the table
    block = min(block, lm.context_length)
    cut = []
    for item in texts:
        ids = lm.tokenizer(item.text, add_special_tokens=False)["input_ids"]
        if len(ids) < block:
            raise InputError(
                f"{item.name}: {len(ids)} tokens, fewer than one window of {block}; "
                "use a longer text or a smaller --block"
            )
        cut.append(windows_of(ids, block, windows))
    runs = [
        ScorerRun(f"{name} ({mode})", get_scorer(name), lm.model, DropPolicy(mode, budget=budget))
        for name, mode in BASELINES
        if mode == "evict" or not budget
    ]
    for d in tef_dirs:
        heads = TEFHeads.load(d, lm.device)
        if budget and heads.config.variant != "causal":
            print(
                f"{d.name}: left out; a fixed kept fraction is a rule of the causal TEF (evict), "
                "not of the paper's"
            )
            continue
        own_lm = tef_checkpoint_lm(d) == d  # the paper variant fine-tuned its own copy of the LM
        model = load_causal_lm(d, device=lm.device, dtype=torch.float32).model if own_lm else lm.model
        runs.append(
            ScorerRun(
                f"{d.name}",
                get_scorer(f"tef_{heads.config.variant}", heads=heads),
                model,
                DropPolicy("zero" if heads.config.variant == "paper" else "evict", budget=budget),
                kind="tef",
            )
        )
    tables = []
    for item, wins in zip(texts, cut, strict=True):
        table = evaluate_scorers(runs, lm.model, wins, KEPT_FRACTIONS if budget else THRESHOLDS)
        table["rule"] = "budget" if budget else "share"
        table["lm"] = str(lm_name)
        table["text"] = item.description
        table["name"] = item.name
        if item.domain:
            table["domain"] = item.domain
        table["comparisons"] = paired_comparisons(table)
        tables.append(table)
        print(f"\n== {item.name}" + (f" ({item.domain})" if item.domain else "") + f": {item.description}")
        _print(table)
        print(table_markdown(table))
        _print_comparisons(table)
    report = tables[0] if len(tables) == 1 else {"lm": str(lm_name), "texts": tables}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")
    if write_cards:
        shipped = {item.name: table for item, table in zip(texts, tables, strict=True) if item.sample}
        for d in tef_dirs:
            card_path = d / "card.json"
            card = json.loads(card_path.read_text())
            metrics = card.setdefault("metrics", {})
            if budget:  # beside the share-rule tables, which the README's Table 1 and the page read
                metrics.setdefault("heldout_budget_tables", {}).update(shipped)
                card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False))
                continue
            old = metrics.get("heldout_table") or {}
            if "austen" in shipped and (
                old.get("reference", {}).get("windows", 0) <= shipped["austen"]["reference"]["windows"]
            ):
                # the Austen table of the README's Table 1: a smaller evaluation does not replace it
                metrics["heldout_table"] = shipped["austen"]
            metrics.setdefault("heldout_tables", {}).update(shipped)
            card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False))
    return report


def _print(table: dict) -> None:
    ref = table["reference"]
    print(
        f"dense reference: perplexity {ref['perplexity']:.2f}, "
        f"{ref['windows']} windows of {ref['block']} tokens"
    )
    name = "kept=" if table.get("rule") == "budget" else "t="
    header = "scorer".ljust(28) + "".join(f"{name}{t:<11}" for t in table["thresholds"])
    print(header)
    for label, group in table["scorers"].items():
        cells = "".join(f"{r['perplexity']:7.2f}/{r['kept_fraction']:.2f} " for r in group["rows"])
        print(label[:27].ljust(28) + cells)
    print("cells: perplexity / kept fraction of (query, key) pairs")


def _interval(c: dict) -> str:
    if math.isnan(c["low"]):
        return "n/a (1 window)"
    return f"{c['low']:.3f}-{c['high']:.3f}"


def _print_comparisons(table: dict) -> None:
    comparisons = table.get("comparisons") or {}
    if not comparisons:
        return
    budget = table.get("rule") == "budget"
    name, prefix = ("kept fraction", "kept=") if budget else ("t", "t=")
    print(f"paired per-window comparison against the best baseline at each {name} ({CI_METHOD}):")
    for t, comp in comparisons.items():
        best = comp["methods"][comp["best"]]
        print(
            f"{prefix}{t}: best baseline {comp['best']} (perplexity {best['perplexity']:.2f}, "
            f"kept {best['kept_fraction']:.2f})"
        )
        print("  " + "method".ljust(28) + "ratio   95% CI          windows won  kept")
        for label, c in sorted(comp["methods"].items(), key=lambda kv: kv[1]["ratio"]):
            if label == comp["best"]:
                continue
            print(
                "  " + label[:27].ljust(28) + f"{c['ratio']:.3f}   {_interval(c):<15} "
                f"{c['wins']:>2}/{c['windows']:<2} vs {c['losses']:>2}  {c['kept_fraction']:.2f}"
            )
    print(
        "ratio: method's perplexity / the best baseline's over the same windows (< 1: the method is "
        "better); windows won: method better / best baseline better"
    )


def table_markdown(table: dict) -> str:
    """The table as Markdown (perplexity, and kept fraction in parentheses), for the README."""
    ts = table["thresholds"]
    name = "kept" if table.get("rule") == "budget" else "t"
    lines = [
        "| scorer (drop mode) | " + " | ".join(f"{name} = {t}" for t in ts) + " |",
        "|---|" + "---|" * len(ts),
    ]
    for label, group in table["scorers"].items():
        cells = " | ".join(f"{r['perplexity']:.2f} ({r['kept_fraction']:.2f})" for r in group["rows"])
        name = label if label.endswith(f"({group['mode']})") else f"{label} ({group['mode']})"
        lines.append(f"| {name} | {cells} |")
    ref = table["reference"]
    lines.append(
        f"\nDense reference: perplexity {ref['perplexity']:.2f} on {ref['windows']} windows of "
        f"{ref['block']} held-out tokens."
    )
    return "\n".join(lines)


def comparisons_markdown(table: dict) -> str:
    """The paired comparisons as Markdown, one row per method and threshold."""
    lines = [
        "| t | method | perplexity / best baseline's (95 % CI) | windows won | kept |",
        "|---|---|---|---|---|",
    ]
    for t, comp in (table.get("comparisons") or {}).items():
        for label, c in sorted(comp["methods"].items(), key=lambda kv: kv[1]["ratio"]):
            if label == comp["best"]:
                lines.append(f"| {t} | **{label}** (best baseline) | 1 | - | {c['kept_fraction']:.2f} |")
            else:
                lines.append(
                    f"| {t} | {label} | {c['ratio']:.3f} ({_interval(c)}) | {c['wins']} of "
                    f"{c['windows']} | {c['kept_fraction']:.2f} |"
                )
    return "\n".join(lines)
