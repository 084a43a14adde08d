"""One intervention layer for any supported causal LM: evict keys, skip or zero tokens, gate a
layer's input, and record queries, keys, values and attention weights, inside the model's own
forward pass.

How, without copying any architecture's forward loop:
- attention: a function registered with transformers' attention interface under the name
  "tefviz" (and sdpa's mask builder under the same name). Outside an intervention it *is* sdpa,
  so the dense pass is plain transformers. Inside one it combines the model's own causal (or
  sliding-window) mask with the layer's key weights.
- token skip / zero / gates: forward pre- and post-hooks on every decoder layer.
- which intervention is active is a `ContextVar`, so one shared model (Streamlit caches one per
  server) serves many sessions at once: each thread sees only its own intervention.

Key weights are soft-capable: a float weight w in [0, 1] on key j for query i multiplies the
attention probability, then the row is renormalised (equivalently softmax(s + log w)), so a
straight-through estimator can train a scorer; boolean masks are exactly masking and run
through SDPA with a boolean mask (the fast path; pass bool for hard masks). A query always
sees itself, so no row is empty.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from tefviz.lm.parts import model_parts

DropMode = Literal["zero", "skip"]
DROP_MODES: tuple[str, ...] = ("zero", "skip")
ATTENTION = "tefviz"


@dataclass
class LayerEdit:
    """What one decoder layer does differently.

    key_weight: (B, q, k) or (B, 1, k) weights of the keys each query sees (0 hides a key).
    token_weight: (B, n) tokens dropped from the layer itself by `mode` ("zero": the layer's input
        is multiplied by it; "skip": the layer's output falls back to its input); they are also
        hidden as keys.
    gate: (B, n) multipliers on the layer's input (the paper's sigmoid gates).
    """

    key_weight: torch.Tensor | None = None
    token_weight: torch.Tensor | None = None
    mode: DropMode = "skip"
    gate: torch.Tensor | None = None


class Plan(Protocol):
    """Decides each layer's edit from the layer's input (a TEF head reads it; static masks don't)."""

    def edit(self, layer: int, hidden: torch.Tensor) -> LayerEdit | None: ...


@dataclass
class LayerRecord:
    query: torch.Tensor | None = None  # (B, H, q, D), after rotary embedding
    key: torch.Tensor | None = None  # (B, H, k, D), grouped-query heads repeated to the query heads
    value: torch.Tensor | None = None
    weights: torch.Tensor | None = None  # (B, H, q, k) attention probabilities
    output: torch.Tensor | None = None  # (B, q, H, D) before the output projection


@dataclass
class Capture:
    """What to record: queries/keys/values and/or attention weights, at some layers (None: all)."""

    qkv: bool = False
    weights: bool = False
    layers: frozenset[int] | None = None
    records: dict[int, LayerRecord] = field(default_factory=dict)

    def wants(self, layer: int) -> bool:
        return (self.qkv or self.weights) and (self.layers is None or layer in self.layers)


@dataclass
class _Run:
    model: nn.Module
    plan: Plan | None
    capture: Capture | None
    layer: int = -1
    edit: LayerEdit | None = None
    layer_input: torch.Tensor | None = None


_ACTIVE: ContextVar[_Run | None] = ContextVar("tefviz_intervention", default=None)
_INSTALL_LOCK = threading.Lock()
_REGISTERED = False


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, _attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    _REGISTERED = True


def install(model: nn.Module) -> nn.Module:
    """Make `model` intervenable (once; idempotent): its attention goes through the "tefviz"
    function (sdpa when no intervention is active) and each decoder layer gets the hooks."""
    if getattr(model, "_tefviz_installed", False):
        if not _owns(model, model):  # a deep copy of an installed model: hooks copied, owner not
            _claim(model)
        return model
    parts = model_parts(model)  # refuses unsupported architectures
    with _INSTALL_LOCK:
        if getattr(model, "_tefviz_installed", False):
            return model
        _register()
        model.set_attn_implementation(ATTENTION)
        _claim(model)
        for index, layer in enumerate(parts.layers):
            layer.register_forward_pre_hook(_pre_hook(index), with_kwargs=True)
            layer.register_forward_hook(_post_hook(index), with_kwargs=True)
        model._tefviz_installed = True
    return model


def _claim(model: nn.Module) -> None:
    """Mark every module as this model's, so a run of this model ignores other models' layers."""
    owner = weakref.ref(model)
    for module in model.modules():
        module._tefviz_owner = owner


@contextmanager
def intervene(model: nn.Module, plan: Plan | None = None, capture: Capture | None = None) -> Iterator[_Run]:
    """Within this block (and this thread), the model's forward passes follow `plan` and fill
    `capture`. Nested use is refused: one intervention at a time per thread."""
    install(model)
    if _ACTIVE.get() is not None:
        raise RuntimeError("an intervention is already active in this thread")
    run = _Run(model, plan, capture)
    token = _ACTIVE.set(run)
    try:
        yield run
    finally:
        _ACTIVE.reset(token)


def _active_for(module: nn.Module) -> _Run | None:
    run = _ACTIVE.get()
    # a different model called inside the block (a reference model, say) runs untouched
    return run if run is not None and _owns(run.model, module) else None


def _owns(model: nn.Module, module: nn.Module) -> bool:
    owner = getattr(module, "_tefviz_owner", None)
    return owner is not None and owner() is model


def _pre_hook(index: int):
    def hook(module, args, kwargs):
        run = _active_for(module)
        if run is None:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        run.layer, run.layer_input = index, hidden
        run.edit = edit = run.plan.edit(index, hidden) if run.plan is not None else None
        if edit is None:
            return None
        factor = edit.gate
        if edit.token_weight is not None and edit.mode == "zero":
            factor = edit.token_weight if factor is None else factor * edit.token_weight
        if factor is None:
            return None
        x = hidden * factor.to(hidden.dtype)[..., None]
        if args:
            return (x, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": x}

    return hook


def _post_hook(index: int):
    def hook(module, args, kwargs, output):
        run = _active_for(module)
        if run is None or run.layer != index:
            return None
        edit, h = run.edit, run.layer_input
        run.edit, run.layer_input = None, None
        if edit is None or edit.token_weight is None or edit.mode != "skip":
            return None
        y = output[0] if isinstance(output, tuple) else output
        w = edit.token_weight.to(y.dtype)[..., None]
        y = h + w * (y - h)  # a skipped token passes the layer unchanged
        return (y, *output[1:]) if isinstance(output, tuple) else y

    return hook


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The "tefviz" attention function: sdpa unless this thread's intervention touches this layer."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    run = _active_for(module)
    edit = run.edit if run is not None else None
    capture = run.capture if run is not None else None
    wants = capture is not None and capture.wants(run.layer)
    has_keys = edit is not None and (edit.key_weight is not None or edit.token_weight is not None)
    if not has_keys and not wants:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    n_rep = query.shape[1] // key.shape[1]
    key, value = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)
    q_len, k_len = query.shape[2], key.shape[2]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    allowed = _base_mask(attention_mask, q_len, k_len, query.device)  # bool (B|1, 1, q, k) or additive
    weight = _key_weights(edit, query.shape[0], q_len, k_len, query.device) if has_keys else None
    soft = weight is not None and weight.dtype != torch.bool
    dropout = dropout if module.training else 0.0
    if weight is not None and not soft and not (wants and capture.weights):
        mask = weight[:, None]
        mask = mask & allowed if allowed.dtype == torch.bool else mask
        if allowed.dtype != torch.bool:
            mask = torch.where(mask, allowed, torch.finfo(query.dtype).min).to(query.dtype)
        out = _masked_sdpa(query, key, value, mask, dropout, scale)
        probs = None
    else:
        scores = (query @ key.transpose(-1, -2)).float() * scale
        if allowed.dtype == torch.bool:
            scores = scores.masked_fill(~allowed, float("-inf"))
        else:
            scores = scores + allowed.float()
        probs = torch.softmax(scores, dim=-1)
        if weight is not None:
            probs = probs * weight[:, None].to(probs.dtype)
            probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)
        if dropout:
            probs = F.dropout(probs, p=dropout)
        out = probs.to(value.dtype) @ value
    out = out.transpose(1, 2).contiguous()
    if wants:
        rec = capture.records.setdefault(run.layer, LayerRecord())
        if capture.qkv:
            rec.query, rec.key, rec.value = query.detach(), key.detach(), value.detach()
            rec.output = out.detach()
        if capture.weights:
            rec.weights = probs.detach() if probs is not None else None
    return out, probs


_QUERY_BLOCK = 256


def _masked_sdpa(query, key, value, mask, dropout: float, scale: float) -> torch.Tensor:
    """SDPA with an explicit mask, in blocks of queries that each read only the keys up to their
    last position: an explicit mask loses SDPA's causal kernel, which skips the keys after each
    query (half of a long text's attention work); blocks win most of it back. Exact: a block is
    cut short only where its mask is False for every key cut."""
    q_len, k_len = query.shape[2], key.shape[2]
    if q_len < 2 * _QUERY_BLOCK or dropout:
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=dropout, scale=scale
        )
    offset = k_len - q_len  # query i sits at key position offset + i
    outs = []
    for a in range(0, q_len, _QUERY_BLOCK):
        b = min(q_len, a + _QUERY_BLOCK)
        block = mask[..., a:b, :]
        limit = offset + b
        if mask.dtype != torch.bool or block[..., limit:].any():
            limit = k_len  # something after the block's last query is visible: read every key
        outs.append(
            F.scaled_dot_product_attention(
                query[:, :, a:b],
                key[:, :, :limit],
                value[:, :, :limit],
                attn_mask=block[..., :limit],
                scale=scale,
            )
        )
    return torch.cat(outs, dim=2)


def _base_mask(mask: torch.Tensor | None, q_len: int, k_len: int, device) -> torch.Tensor:
    """The model's own mask as given to sdpa (bool, True = may attend, or additive float); when
    sdpa's builder skipped it (plain causal), the causal mask itself, queries last in the keys."""
    if mask is not None:
        return mask[..., -k_len:] if mask.shape[-1] != k_len else mask
    q = torch.arange(k_len - q_len, k_len, device=device)
    return (q[:, None] >= torch.arange(k_len, device=device)[None, :])[None, None]


def _key_weights(edit: LayerEdit, b: int, q_len: int, k_len: int, device) -> torch.Tensor:
    """(B, q, k) key weights of the edit: key weights times token weights, the diagonal always
    kept. Boolean in, boolean out (hard masks take SDPA's fast path); any float makes it float."""
    parts = []
    if edit.key_weight is not None:
        w = edit.key_weight.to(device)
        parts.append(w[:, None, :] if w.dim() == 2 else w)
    if edit.token_weight is not None:
        parts.append(edit.token_weight.to(device)[:, None, -k_len:])
    if any(p.dtype != torch.bool for p in parts):
        parts = [p.float() if p.dtype == torch.bool else p for p in parts]
    w = parts[0]
    if len(parts) == 2:
        w = w & parts[1] if w.dtype == torch.bool else w * parts[1]
    w = w.expand(b, q_len, k_len)
    eye = torch.zeros(q_len, k_len, device=device, dtype=torch.bool)
    eye[torch.arange(q_len), torch.arange(k_len - q_len, k_len)] = True
    if w.dtype == torch.bool:
        return w | eye
    return w + (1 - w) * eye.to(w.dtype)  # a query always sees itself
