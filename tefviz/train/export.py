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
from tefviz.metrics import LMScore, score_text
from tefviz.models import LoadedLM, load_causal_lm
from tefviz.train.lm import build_model, config_from_json, load_run_weights


def evaluate_lm(lm: LoadedLM, corpus_dir: Path | None = None, dtype: torch.dtype | None = None) -> dict:
    """Perplexity and bits per byte on the shipped held-out prose and, if given, the corpus splits,
    and each source's held-out documents on their own where the corpus wrote them (`by_source`)."""
    dtype = dtype or lm.dtype
    block = lm.context_length
    results = {"heldout_austen": score_text(lm.model, lm.tokenizer, heldout_text(), block, dtype).as_dict()}
    if corpus_dir is not None:
        by_source = heldout_by_source(corpus_dir)
        if by_source:
            # each held-out token is scored once: per source, and the splits as their sums
            scores = {
                source: {
                    split: score_text(lm.model, lm.tokenizer, path.read_text(encoding="utf-8"), block, dtype)
                    for split, path in splits.items()
                }
                for source, splits in by_source.items()
            }
            results["corpus_by_source"] = {
                source: {split: sc.as_dict() for split, sc in splits.items()}
                for source, splits in scores.items()
            }
            for split in ("valid", "test"):
                parts = [splits[split] for splits in scores.values() if split in splits]
                if parts:
                    total = LMScore(
                        sum(p.tokens for p in parts),
                        sum(p.bytes for p in parts),
                        sum(p.nll_nats for p in parts),
                    )
                    results[f"corpus_{split}"] = {**total.as_dict(), "scored": "per source, summed"}
        else:
            for split in ("valid", "test"):
                path = corpus_dir / f"{split}.txt"
                if path.is_file():
                    text = path.read_text(encoding="utf-8")
                    score = score_text(lm.model, lm.tokenizer, text, block, dtype)
                    results[f"corpus_{split}"] = score.as_dict()
    results["eval_dtype"] = str(dtype).replace("torch.", "")
    results["eval_context"] = {"block": block, "stride": block // 2}
    return results


def heldout_by_source(corpus_dir: Path) -> dict[str, dict[str, Path]]:
    """{source: {split: file}} of the per-source held-out files a corpus build wrote (may be empty)."""
    manifest_path = corpus_dir / "manifest.json"
    if not manifest_path.is_file():
        return {}
    entries = json.loads(manifest_path.read_text()).get("held_out_by_source", {})
    found = {
        source: {
            split: corpus_dir / info["file"]
            for split, info in sorted(splits.items())
            if (corpus_dir / info["file"]).is_file()
        }
        for source, splits in entries.items()
    }
    return {source: splits for source, splits in found.items() if splits}


def architecture_card(config, parameters: int) -> dict:
    """The card's architecture block, from the exported model's config."""
    if config.model_type == "llama":
        rope = getattr(config, "rope_parameters", None) or {}
        return {
            "class": "LlamaForCausalLM",
            "layers": config.num_hidden_layers,
            "width": config.hidden_size,
            "heads": config.num_attention_heads,
            "kv_heads": config.num_key_value_heads,
            "head_dim": config.hidden_size // config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
            "mlp": "SwiGLU (SiLU-gated)",
            "norm": f"RMSNorm (eps {config.rms_norm_eps})",
            "positions": "rotary (RoPE)",
            "rope_theta": rope.get("rope_theta", getattr(config, "rope_theta", None)),
            "context": config.max_position_embeddings,
            "vocab": config.vocab_size,
            "parameters": parameters,
            "tied_embeddings": bool(config.tie_word_embeddings),
            "weights_dtype": "float16",
        }
    return {
        "class": "GPT2LMHeadModel",
        "layers": config.n_layer,
        "width": config.n_embd,
        "heads": config.n_head,
        "context": config.n_positions,
        "vocab": config.vocab_size,
        "parameters": parameters,
        "tied_embeddings": True,
        "weights_dtype": "float16",
    }


def _licences(manifest: dict) -> str:
    parts = [f"{s['name']}: {s['licence']}" for s in manifest.get("sources", []) if s.get("licence")]
    return "weights derived from the training data below; the data licences apply (" + "; ".join(parts) + ")"


def export_lm(run_dir: Path, out_dir: Path, command: str | None = None, preset: str | None = None) -> dict:
    """Write `out_dir` (config, fp16 safetensors, tokenizer, card.json) from a run's state.

    `command` overrides the training command(s) the run recorded.
    """
    state = run_dir / "state"
    if not (state / "model.safetensors").is_file():
        raise CheckpointError(f"{run_dir} has no trained state to export")
    train_cfg = json.loads((state / "config.json").read_text())
    preset = preset or train_cfg.get("extra", {}).get("preset") or "small"
    llama = train_cfg.get("arch", "gpt2") == "llama"
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
        "summary": (
            "Llama-architecture causal LM (rotary positions, RMSNorm, SwiGLU, grouped-query "
            "attention) trained from scratch by tefviz on offline English text."
            if llama
            else "GPT-2-architecture causal LM trained from scratch by tefviz on offline English text."
        ),
        "architecture": architecture_card(config, lm.parameters),
        "tokenizer": f"byte-level BPE, {len(tok)} tokens, trained with `tokenizers` on the train split",
        "training_data": {
            "sources": manifest.get("sources", []),
            "splits": {
                k: {kk: v[kk] for kk in ("documents", "bytes", "sha256")}
                for k, v in manifest.get("splits", {}).items()
            },
            "split_rule": "deterministic: sha256 of (source, document id); Austen 5%/5% valid/test "
            "by chapter, other sources 2%/2% by entry"
            + (" (a Bible chapter, a fortune, a documentation section)" if llama else ""),
        },
        "licence": {
            "model": _licences(manifest)
            if llama
            else "weights derived from the training data below; the data licences apply "
            "(public domain, GFDL-1.1+ for FOLDOC)",
            "code": "see the repository",
        },
        "training": {
            "command": command or " && ".join(dict.fromkeys(progress.get("commands", []))),
            "preset": preset,
            "config": {
                k: v for k, v in train_cfg.items() if k not in ("corpus_dir", "run_dir", "extra", "argv")
            },
            "steps": progress["step"],
            "tokens_seen": progress["tokens_seen"],
            "wall_clock_minutes": round(progress["elapsed_s"] / 60, 1),
            "device": f"{device_info().name} ({device_info().detail})",
            "log": progress["log"],
        },
        "metrics": metrics,
        "metrics_note": "heldout_austen: Austen chapters from the test split, shipped in "
        "tefviz/assets/heldout_austen.json; bits_per_byte counts UTF-8 bytes of the "
        "text each scored token covers; windows of the full context, stride half."
        + (
            " corpus_by_source: each source's valid and test documents scored on their own."
            if "corpus_by_source" in metrics
            else ""
        ),
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
