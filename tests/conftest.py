"""Shared fixtures: tiny randomly initialised models, built once per session. No GPU, no network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# Never touch the network; the hub code path is tested against a local cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TEFVIZ_DEVICE", "cpu")

REPO = Path(__file__).resolve().parent.parent
SHIPPED_LM = REPO / "checkpoints" / "tefviz-lm"


def make_tiny_lm(out: Path, n_positions: int = 64, vocab: int = 320) -> Path:
    """A random 2-layer GPT-2 with a BPE tokenizer trained on the shipped held-out text."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tefviz.data.heldout import HELDOUT_PATH, heldout_text
    from tefviz.train.tokenizer import train_bpe

    out.mkdir(parents=True, exist_ok=True)
    text_file = out.parent / f"{out.name}-corpus.txt"
    text_file.write_text(heldout_text()[:20000])
    tok = train_bpe([text_file], vocab)
    import torch

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).half().save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    card = {
        "name": out.name, "summary": "tiny random test model",
        "architecture": {"class": "GPT2LMHeadModel", "layers": 2, "width": 32},
        "training_data": {"sources": [{"name": "heldout", "description": HELDOUT_PATH.name,
                                       "package": "-", "licence": "public domain",
                                       "documents": 1, "characters": 20000}]},
        "training": {"command": "python -m tefviz train lm --preset tiny", "steps": 0,
                     "tokens_seen": 0, "log": [{"step": 1, "train_loss": 6.0, "valid_loss": 6.1,
                                                "tokens_seen": 512, "elapsed_s": 1.0}]},
        "metrics": {"heldout_austen": {"tokens": 10, "bytes": 40, "loss": 5.0,
                                       "perplexity": 148.4, "bits_per_byte": 1.8}},
    }
    (out / "card.json").write_text(json.dumps(card))
    return out


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("models") / "tefviz-lm")


@pytest.fixture()
def checkpoints_root(tmp_path, tiny_lm_dir, monkeypatch) -> Path:
    """A checkpoints/ directory holding the tiny LM under the default name."""
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_lm_dir, root / "tefviz-lm")
    monkeypatch.setenv("TEFVIZ_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """train/valid/test splits made from the shipped held-out text (no Debian packages needed)."""
    from tefviz.data.heldout import heldout_text

    d = tmp_path_factory.mktemp("corpus")
    text = heldout_text()
    n = len(text)
    (d / "train.txt").write_text(text[: int(n * 0.8)])
    (d / "valid.txt").write_text(text[int(n * 0.8) : int(n * 0.9)])
    (d / "test.txt").write_text(text[int(n * 0.9) :])
    (d / "manifest.json").write_text(json.dumps({"sources": [{"name": "heldout"}], "splits": {}}))
    return d
