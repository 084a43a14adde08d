"""Tiny randomly initialised causal LMs of every architecture the intervention layer supports.

Offline and fast: two layers, width 32, grouped-query attention where the architecture has it,
a sliding window for Mistral, partial rotary for GPT-NeoX and Phi. `save_tiny` writes one as a
checkpoint directory with the shipped tokenizer, as a user's model would arrive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PhiConfig,
    PretrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TOKENIZER = ROOT / "checkpoints" / "tefviz-lm"
ARCHS = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gpt_neox", "phi3", "phi")


def tiny_config(arch: str, vocab: int = 128, context: int = 128) -> PretrainedConfig:
    common = dict(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=context,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    gqa = dict(num_key_value_heads=2, intermediate_size=64)
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=context,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=0,
        )
    if arch == "llama":
        return LlamaConfig(**common, **gqa, tie_word_embeddings=True)
    if arch == "mistral":
        return MistralConfig(**common, **gqa, sliding_window=8, tie_word_embeddings=False)
    if arch == "qwen2":
        return Qwen2Config(**common, **gqa, tie_word_embeddings=True)
    if arch == "qwen3":
        return Qwen3Config(**common, **gqa, head_dim=8, tie_word_embeddings=True)
    if arch == "gpt_neox":
        return GPTNeoXConfig(**common, intermediate_size=64, rotary_pct=0.25, use_parallel_residual=True)
    if arch == "phi3":
        return Phi3Config(**common, **gqa)
    if arch == "phi":
        return PhiConfig(**common, intermediate_size=64, partial_rotary_factor=0.5)
    raise ValueError(arch)


def tiny_model(arch: str, vocab: int = 128, context: int = 128, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab, context), attn_implementation="sdpa")
    return model.float().eval()


def save_tiny(arch: str, out: Path, context: int = 128) -> Path:
    """A checkpoint directory: a tiny random model of `arch` with the shipped tokenizer, fp32
    safetensors, and a card saying what it is."""
    import json

    vocab = json.loads((SHIPPED_TOKENIZER / "config.json").read_text())["vocab_size"]
    tiny_model(arch, vocab, context).save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(SHIPPED_TOKENIZER / name, out / name)
    (out / "card.json").write_text(
        json.dumps(
            {
                "name": out.name,
                "summary": f"tiny random {arch} for tests",
                "training_data": "none (random init)",
                "licence": "MIT",
            }
        )
    )
    return out
