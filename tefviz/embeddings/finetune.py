"""A short fine-tune after compression: `python -m tefviz train embeddings --method M --knob k=v ...`.

Only the compressed embedding's full-precision factors learn (TT cores, low-rank factors, the LoRA
correction); the LM is frozen. The loss is the LM's next-token cross-entropy on the training corpus
with the compressed matrix in place of the embedding and the tied output head. Held-out perplexity
(the shipped Austen chapters, as on the Embeddings page) is measured before and after.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from tefviz.data.heldout import heldout_text
from tefviz.embeddings.compressors import COMPRESSORS, compress, dense_bytes
from tefviz.embeddings.evaluate import windows_perplexity
from tefviz.errors import InputError
from tefviz.lm import masked_forward, model_parts
from tefviz.models import load_causal_lm
from tefviz.text.evaluate import windows_of
from tefviz.train.loop import sample_windows
from tefviz.train.tef import encode_split


@dataclass
class FinetuneConfig:
    """One `train embeddings` run; `python -m tefviz train embeddings` has one flag per field."""

    method: str = field(metadata={"help": "the compressor to fine-tune", "choices": COMPRESSORS.names})
    knobs: dict[str, int] = field(
        default_factory=dict, metadata={"help": "compressor setting, name=int (repeat)", "flag": "--knob"}
    )
    base: str = field(default="checkpoints/tefviz-lm", metadata={"help": "LM checkpoint dir or hub name"})
    corpus_dir: Path = field(
        default=Path("data/corpus"), metadata={"help": "corpus dir (train/valid/test)", "flag": "--corpus"}
    )
    run_dir: Path = field(default=Path("runs/embeddings-finetune"), metadata={"help": "run directory"})
    steps: int = field(default=200, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=8, metadata={"help": "windows per step"})
    block_size: int = field(default=256, metadata={"help": "window length (at most the LM's context)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    heldout_windows: int = field(default=4, metadata={"help": "held-out windows for the perplexities"})
    max_minutes: float | None = field(default=None, metadata={"help": "stop after this many minutes"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    command: str = ""
    extra: dict = field(default_factory=dict)


def finetune_embedding(cfg: FinetuneConfig) -> dict:
    if cfg.method not in COMPRESSORS:
        raise InputError(f"unknown compressor {cfg.method!r}; choose one of {sorted(COMPRESSORS)}")
    lm = load_causal_lm(cfg.base, dtype=torch.float32)  # the policy's device; fp32 to train
    model = lm.model
    for p in model.parameters():
        p.requires_grad_(False)
    weight = model_parts(model).embedding.weight.detach().float()
    compressed = compress(cfg.method, weight, **cfg.knobs)
    params = compressed.trainable()
    if not params:
        label = COMPRESSORS[cfg.method].label
        raise InputError(
            f"{label} stores only quantised values: nothing to fine-tune "
            "(try tensor_train, low_rank or lora_shared)"
        )
    block = min(cfg.block_size, lm.context_length)
    train = encode_split(lm.tokenizer, cfg.corpus_dir, "train", cfg.run_dir / "tokens_train.npy")
    ids = lm.tokenizer(heldout_text(), add_special_tokens=False)["input_ids"]
    wins = windows_of(ids, lm.context_length, cfg.heldout_windows)
    dense = windows_perplexity(model, wins)
    before = windows_perplexity(model, wins, compressed.matrix())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    log, start, step = [], time.time(), 0
    bar = tqdm(range(cfg.steps), desc=f"fine-tune {cfg.method}", unit="step")
    for step in bar:
        if cfg.max_minutes and time.time() - start > 60 * cfg.max_minutes:
            break
        x = sample_windows(train, block, cfg.batch_size, rng).to(lm.device)
        logits = masked_forward(model, x[:, :-1], embedding=compressed.matrix()).logits
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % 20 == 0 or step == cfg.steps - 1:
            log.append(
                {
                    "step": step + 1,
                    "train_loss": round(loss.item(), 4),
                    "elapsed_s": round(time.time() - start, 1),
                }
            )
    for p in params:
        p.requires_grad_(False)
    after = windows_perplexity(model, wins, compressed.matrix())
    result = {
        "method": cfg.method,
        "knobs": cfg.knobs,
        "base": cfg.base,
        "command": cfg.command,
        "bytes": compressed.bytes,
        "dense_bytes": dense_bytes(*weight.shape),
        "compression": round(dense_bytes(*weight.shape) / compressed.bytes, 3),
        "dense_perplexity": round(dense, 3),
        "perplexity_before": round(before, 3),
        "perplexity_after": round(after, 3),
        "steps": len(log) and log[-1]["step"],
        "minutes": round((time.time() - start) / 60, 2),
        "log": log,
        "heldout": f"{len(wins)} windows of {lm.context_length} tokens of held-out Austen",
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    }
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {f"factor_{i}": p.detach().contiguous() for i, p in enumerate(params)},
        cfg.run_dir / "factors.safetensors",
    )
    (cfg.run_dir / "result.json").write_text(json.dumps(result, indent=1))
    print(
        f"{cfg.method} {cfg.knobs}: {result['compression']}x fewer bytes; held-out perplexity "
        f"dense {dense:.2f}, compressed {before:.2f} -> fine-tuned {after:.2f} ({result['steps']} steps)"
    )
    return result
