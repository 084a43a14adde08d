"""GPT-2 forward pass with per-block token dropping.

Token dropping needs control that `GPT2LMHeadModel.forward` does not give: which tokens
enter each block, and which are visible as keys. This module runs the model's own
modules (embeddings, blocks, final norm, head) in a loop of its own, so every text
scorer and both TEF variants share one implementation of "drop a token":

- ``"zero"`` (the paper's GPT2-TEF): a dropped token's block input is multiplied by 0
  and it is masked as a key; its position and its own prediction stay.
- ``"skip"`` (Mixture-of-Depths / FTP style): a dropped token passes the block
  unchanged (identity on its residual stream) and is masked as a key.

Masks are *soft-capable*: ``keep`` may hold values in [0, 1] so a straight-through
estimator can train a scorer; with hard {0, 1} values the pass is exactly masking.
A query always sees itself, so no attention row is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tefviz.errors import InputError

DropMode = Literal["zero", "skip"]
DROP_MODES: tuple[str, ...] = ("zero", "skip")


@dataclass(frozen=True)
class GPT2Parts:
    wte: nn.Embedding
    wpe: nn.Embedding
    blocks: nn.ModuleList
    ln_f: nn.LayerNorm
    lm_head: nn.Module
    n_head: int

    @property
    def n_layer(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return self.wte.embedding_dim


def gpt2_parts(model: nn.Module) -> GPT2Parts:
    """The modules of a `GPT2LMHeadModel`, or InputError for an architecture this loop can't run."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "gpt2" or not hasattr(model, "transformer"):
        kind = getattr(cfg, "model_type", type(model).__name__)
        raise InputError(f"token dropping needs a GPT-2-architecture model; this one is {kind!r}")
    if getattr(cfg, "add_cross_attention", False) or getattr(cfg, "reorder_and_upcast_attn", False):
        raise InputError("GPT-2 variants with cross-attention or reordered attention are not supported")
    t = model.transformer
    return GPT2Parts(t.wte, t.wpe, t.h, t.ln_f, model.lm_head, cfg.n_head)


def attention_with_key_weights(
    attn: nn.Module, x: torch.Tensor, key_weight: torch.Tensor | None, n_head: int, need_weights: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal self-attention of one GPT-2 block where, for query i of batch row b, key j counts
    with weight key_weight[b, i, j] (0 hides it); the diagonal always counts fully."""
    b, n, d = x.shape
    q, k, v = attn.c_attn(x).split(d, dim=2)
    q, k, v = (z.view(b, n, n_head, d // n_head).transpose(1, 2) for z in (q, k, v))
    causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
    if key_weight is None and not need_weights:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scaling)
        probs = None
    else:
        scores = (q @ k.transpose(-1, -2)) * attn.scaling
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1)
        if key_weight is not None:
            eye = torch.eye(n, device=x.device, dtype=probs.dtype)
            w = key_weight.to(probs.dtype)[:, None]  # (B, 1, n, n): the same for every head
            w = w + (1 - w) * eye  # a query always sees itself
            probs = probs * w
            probs = probs / probs.sum(-1, keepdim=True)
        out = probs.to(v.dtype) @ v
    out = out.transpose(1, 2).reshape(b, n, d)
    return attn.c_proj(out), probs


def block_step(block: nn.Module, x: torch.Tensor, key_weight: torch.Tensor | None, n_head: int,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One GPT-2 block (pre-norm attention with key weights, then the MLP) on residual stream x."""
    a, probs = attention_with_key_weights(block.attn, block.ln_1(x), key_weight, n_head, need_weights)
    y = x + a
    return y + block.mlp(block.ln_2(y)), probs


@dataclass
class MaskedOutput:
    logits: torch.Tensor  # (B, n, V)
    attentions: list[torch.Tensor] | None  # per block (B, H, n, n), when asked for


def masked_forward(
    model: nn.Module,
    ids: torch.Tensor,
    key_keep: torch.Tensor | None = None,
    token_keep: torch.Tensor | None = None,
    mode: DropMode = "skip",
    gates: torch.Tensor | None = None,
    need_weights: bool = False,
    embedding: torch.Tensor | None = None,
) -> MaskedOutput:
    """Logits of `ids` (B, n) with tokens dropped per block.

    key_keep: which keys each query may see, per block: (L, B, n, n) or (L, n, n) pairwise,
        or (L, n) / (n,) per key; weights in [0, 1]. This alone is eviction from
        the context: every token still computes its own prediction in full.
    token_keep: (L, B, n) / (L, n) / (n,): tokens dropped from the block itself, by `mode`
        ("zero": input multiplied by 0; "skip": residual passed through); they are also
        hidden as keys.
    gates: optional (L, B, n) multipliers on each block's input (the paper's sigmoid gates).
    embedding: optional (V, D) token embedding used instead of the model's, for input and (tied)
        output alike; the shared model is never modified.
    """
    parts = gpt2_parts(model)
    if ids.dim() == 1:
        ids = ids[None]
    b, n = ids.shape
    if n > parts.wpe.num_embeddings:
        raise InputError(f"{n} tokens exceed the model's context of {parts.wpe.num_embeddings}")
    if mode not in DROP_MODES:
        raise InputError(f"unknown drop mode {mode!r}; choose one of {DROP_MODES}")
    layers = parts.n_layer
    keys = _pairwise(key_keep, layers, b, n)
    tokens = _per_block(token_keep, layers, b, n, "token")
    gates = _per_block(gates, layers, b, n, "gate")
    pos = torch.arange(n, device=ids.device)
    table = parts.wte.weight if embedding is None else embedding.to(parts.wte.weight)
    h = table[ids] + parts.wpe(pos)[None]
    attentions: list[torch.Tensor] | None = [] if need_weights else None
    for layer, block in enumerate(parts.blocks):
        w_tok = None if tokens is None else tokens[layer].to(h.dtype)
        w_key = None if keys is None else keys[layer]
        if w_tok is not None:
            w_key = w_tok[:, None, :] if w_key is None else w_key * w_tok[:, None, :]
        x = h if gates is None else h * gates[layer].to(h.dtype)[..., None]
        if w_tok is not None and mode == "zero":
            x = x * w_tok[..., None]
        y, probs = block_step(block, x, w_key, parts.n_head, need_weights)
        if w_tok is not None and mode == "skip":
            y = h + w_tok[..., None] * (y - h)
        h = y
        if attentions is not None:
            attentions.append(probs)
    out = parts.ln_f(h)
    logits = parts.lm_head(out) if embedding is None else out @ table.T
    return MaskedOutput(logits, attentions)


def _per_block(m: torch.Tensor | None, layers: int, b: int, n: int, what: str) -> torch.Tensor | None:
    """Broadcast a (n,), (L, n) or (L, B, n) mask to (L, B, n)."""
    if m is None:
        return None
    if m.dim() == 1:
        m = m[None, None].expand(layers, b, -1)
    elif m.dim() == 2:
        m = m[:, None].expand(-1, b, -1)
    if tuple(m.shape) != (layers, b, n):
        raise InputError(f"{what} mask of shape {tuple(m.shape)} does not fit {layers} blocks x {b} x {n}")
    return m


def _pairwise(m: torch.Tensor | None, layers: int, b: int, n: int) -> torch.Tensor | None:
    """Key masks as (L, B, n, n) (query x key): from (n,) or (L, n) per key, (L, n, n) pairwise
    for every batch row, or (L, B, n, n)."""
    if m is None:
        return None
    if m.dim() <= 2:
        per_key = _per_block(m, layers, b, n, "key")
        return per_key[:, :, None, :].expand(-1, -1, n, -1)
    if m.dim() == 3:
        m = m[:, None].expand(-1, b, -1, -1)
    if tuple(m.shape) != (layers, b, n, n):
        raise InputError(f"key mask of shape {tuple(m.shape)} does not fit {layers} x {b} x {n} x {n}")
    return m
