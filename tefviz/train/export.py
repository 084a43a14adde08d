"""Export a training run as a shipped checkpoint (fp16 safetensors + card) and evaluate it."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

from tefviz.data.heldout import heldout_text
from tefviz.device import device_info
from tefviz.errors import CheckpointError
from tefviz.metrics import score_text
from tefviz.models import LoadedLM, load_causal_lm
from tefviz.train.lm import build_model, config_from_json, load_run_weights


def evaluate_lm(lm: LoadedLM, corpus_dir: Path | None = None, dtype: torch.dtype | None = None) -> dict:
    """Perplexity and bits per byte on the shipped held-out prose and, if given, the corpus splits."""
    dtype = dtype or lm.dtype
    block = lm.context_length
    results = {"heldout_austen": score_text(lm.model, lm.tokenizer, heldout_text(), block, dtype).as_dict()}
    if corpus_dir is not None:
        for split in ("valid", "test"):
            path = corpus_dir / f"{split}.txt"
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                results[f"corpus_{split}"] = score_text(lm.model, lm.tokenizer, text, block, dtype).as_dict()
    results["eval_dtype"] = str(dtype).replace("torch.", "")
    results["eval_context"] = {"block": block, "stride": block // 2}
    return results


def export_lm(run_dir: Path, out_dir: Path, command: str | None = None, preset: str = "small") -> dict:
    """Write `out_dir` (config, fp16 safetensors, tokenizer, card.json) from a run's state.

    `command` overrides the training command(s) the run recorded.
    """
    state = run_dir / "state"
    if not (state / "model.safetensors").is_file():
        raise CheckpointError(f"{run_dir} has no trained state to export")
    train_cfg = json.loads((state / "config.json").read_text())
    progress = json.loads((state / "progress.json").read_text())
    tok = PreTrainedTokenizerFast.from_pretrained(run_dir / "tokenizer")
    model = build_model(config_from_json(train_cfg), tok)
    load_run_weights(model, state / "model.safetensors")
    config = model.config
    # write beside the target, then swap: a running app never sees a half-written checkpoint
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.half().save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)

    # Metrics are measured on the exported fp16 weights, computed in fp32.
    lm = load_causal_lm(tmp, device="cpu", dtype=torch.float32)
    corpus_dir = Path(train_cfg["corpus_dir"])
    metrics = evaluate_lm(lm, corpus_dir if corpus_dir.is_dir() else None, torch.float32)
    manifest_path = corpus_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    card = {
        "name": out_dir.name,
        "summary": "GPT-2-architecture causal LM trained from scratch by tefviz on offline English text.",
        "architecture": {
            "class": "GPT2LMHeadModel",
            "layers": config.n_layer,
            "width": config.n_embd,
            "heads": config.n_head,
            "context": config.n_positions,
            "vocab": config.vocab_size,
            "parameters": lm.parameters,
            "tied_embeddings": True,
            "weights_dtype": "float16",
        },
        "tokenizer": f"byte-level BPE, {len(tok)} tokens, trained with `tokenizers` on the train split",
        "training_data": {
            "sources": manifest.get("sources", []),
            "splits": {k: {kk: v[kk] for kk in ("documents", "bytes", "sha256")}
                       for k, v in manifest.get("splits", {}).items()},
            "split_rule": "deterministic: sha256 of (source, document id); Austen 5%/5% valid/test "
                          "by chapter, other sources 2%/2% by entry",
        },
        "licence": {
            "model": "weights derived from the training data below; the data licences apply "
                     "(public domain, GFDL-1.1+ for FOLDOC)",
            "code": "see the repository",
        },
        "training": {
            "command": command or " && ".join(dict.fromkeys(progress.get("commands", []))),
            "preset": preset,
            "config": {k: v for k, v in train_cfg.items()
                       if k not in ("corpus_dir", "run_dir", "extra", "argv")},
            "steps": progress["step"],
            "tokens_seen": progress["tokens_seen"],
            "wall_clock_minutes": round(progress["elapsed_s"] / 60, 1),
            "device": f"{device_info().name} ({device_info().detail})",
            "log": progress["log"],
        },
        "metrics": metrics,
        "metrics_note": "heldout_austen: Austen chapters from the test split, shipped in "
                        "tefviz/assets/heldout_austen.json; bits_per_byte counts UTF-8 bytes of the "
                        "text each scored token covers; windows of the full context, stride half.",
        "exported": dt.date.today().isoformat(),
    }
    (tmp / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False))
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return card
