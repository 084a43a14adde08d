"""Forward passes with tokens dropped, keys evicted or internals recorded, for any supported LM.

`masked_forward` is what every text scorer, the attention patterns on the LM and the Embeddings
page run; it turns static masks into a plan for `tefviz.lm.intervene`.

- ``"zero"`` (the paper's GPT2-TEF): a dropped token's layer input is multiplied by 0 and it is
  masked as a key; its position and its own prediction stay.
- ``"skip"`` (Mixture-of-Depths / FTP style): a dropped token passes the layer unchanged
  (identity on its residual stream) and is masked as a key.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tefviz.errors import InputError
from tefviz.lm.intervene import DROP_MODES, Capture, DropMode, LayerEdit, intervene
from tefviz.lm.parts import ModelParts, model_parts


@dataclass
class StaticPlan:
    """Masks fixed before the pass: per layer key weights (L, B, q|1, k), token weights and gates
    (L, B, n)."""

    keys: torch.Tensor | None
    tokens: torch.Tensor | None
    gates: torch.Tensor | None
    mode: DropMode

    def edit(self, layer: int, hidden: torch.Tensor) -> LayerEdit | None:
        if self.keys is None and self.tokens is None and self.gates is None:
            return None
        pick = lambda m: None if m is None else m[layer]  # noqa: E731
        return LayerEdit(pick(self.keys), pick(self.tokens), self.mode, pick(self.gates))


@dataclass
class MaskedOutput:
    logits: torch.Tensor  # (B, n, V)
    attentions: list[torch.Tensor] | None  # per layer (B, H, n, n), when asked for


def check_length(parts: ModelParts, n: int) -> None:
    if n > parts.context:
        raise InputError(f"{n} tokens exceed the model's context of {parts.context}")


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
    """Logits of `ids` (B, n) with tokens dropped per layer.

    key_keep: which keys each query may see, per layer: (L, B, n, n) or (L, n, n) pairwise, or
        (L, B, n), (L, n) or (n,) per key; weights in [0, 1] or bool. This alone is eviction from
        the context: every token still computes its own prediction in full.
    token_keep: (L, B, n) / (L, n) / (n,): tokens dropped from the layer itself, by `mode`; they
        are also hidden as keys.
    gates: optional (L, B, n) multipliers on each layer's input (the paper's sigmoid gates).
    embedding: optional (V, D) token embedding used instead of the model's, for input and (when
        the head is tied to it) output alike; the shared model is never modified.
    """
    parts = model_parts(model)
    if ids.dim() == 1:
        ids = ids[None]
    b, n = ids.shape
    check_length(parts, n)
    if mode not in DROP_MODES:
        raise InputError(f"unknown drop mode {mode!r}; choose one of {DROP_MODES}")
    layers = parts.n_layer
    plan = StaticPlan(
        _key_masks(key_keep, layers, b, n),
        _per_layer(token_keep, layers, b, n, "token"),
        _per_layer(gates, layers, b, n, "gate"),
        mode,
    )
    capture = Capture(weights=True) if need_weights else None
    with intervene(model, plan, capture):
        logits = _logits(model, parts, ids, embedding)
    attentions = [capture.records[i].weights for i in range(layers)] if capture is not None else None
    return MaskedOutput(logits, attentions)


def _logits(model: nn.Module, parts: ModelParts, ids: torch.Tensor, embedding: torch.Tensor | None):
    if embedding is None:
        return model(input_ids=ids, use_cache=False).logits
    table = embedding.to(parts.embedding.weight)
    hidden = model.base_model(inputs_embeds=table[ids], use_cache=False).last_hidden_state
    if not parts.tied:
        return parts.head(hidden)
    logits = hidden @ table.T
    bias = getattr(parts.head, "bias", None)
    return logits if bias is None else logits + bias


@torch.no_grad()
def capture_qkv(
    model: nn.Module, ids: torch.Tensor, layer: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The real queries, keys and values of one layer for a text, as the model uses them (after
    rotary embedding; grouped-query key/value heads repeated to their query heads): each
    (heads, n, head_dim), float32."""
    parts = model_parts(model)
    if not 0 <= layer < parts.n_layer:
        raise InputError(f"layer {layer} does not exist; the model has {parts.n_layer}")
    ids = ids.reshape(1, -1)
    check_length(parts, ids.shape[1])
    capture = Capture(qkv=True, layers=frozenset({layer}))
    with intervene(model, None, capture):
        model(input_ids=ids, use_cache=False)
    rec = capture.records[layer]
    return tuple(z[0].float() for z in (rec.query, rec.key, rec.value))


def _per_layer(m: torch.Tensor | None, layers: int, b: int, n: int, what: str) -> torch.Tensor | None:
    """Broadcast a (n,), (L, n) or (L, B, n) mask to (L, B, n)."""
    if m is None:
        return None
    if m.dim() == 1:
        m = m[None, None].expand(layers, b, -1)
    elif m.dim() == 2:
        m = m[:, None].expand(-1, b, -1)
    if tuple(m.shape) != (layers, b, n):
        raise InputError(f"{what} mask of shape {tuple(m.shape)} does not fit {layers} layers x {b} x {n}")
    return m


def _key_masks(m: torch.Tensor | None, layers: int, b: int, n: int) -> torch.Tensor | None:
    """Key masks from (n,) or (L, n) per key, as (L, B, 1, n) (never expanded to n x n), or from
    (L, n, n) / (L, B, n, n) pairwise, as (L, B, n, n)."""
    if m is None:
        return None
    if m.dim() <= 2:
        return _per_layer(m, layers, b, n, "key")[:, :, None, :]
    if m.dim() == 3:
        m = m[:, None].expand(-1, b, -1, -1)
    if tuple(m.shape) != (layers, b, n, n):
        raise InputError(f"key mask of shape {tuple(m.shape)} does not fit {layers} x {b} x {n} x {n}")
    return m
