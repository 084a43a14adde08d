"""The parts of a Hugging Face causal LM that tefviz reads or changes, named once.

Every architecture keeps its decoder layers and final norm under different attribute names;
this table is the one place that knows them. Everything else (sizes, context) comes from the
config through transformers' standard attribute names, so GPT-2's `n_layer` and Llama's
`num_hidden_layers` read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from tefviz.errors import InputError

# model_type -> (decoder layers, final norm, positions), the first two relative to model.base_model
ARCHITECTURES: dict[str, tuple[str, str, Literal["absolute", "rotary"]]] = {
    "gpt2": ("h", "ln_f", "absolute"),
    "llama": ("layers", "norm", "rotary"),
    "mistral": ("layers", "norm", "rotary"),
    "qwen2": ("layers", "norm", "rotary"),
    "qwen3": ("layers", "norm", "rotary"),
    "gpt_neox": ("layers", "final_layer_norm", "rotary"),
    "phi3": ("layers", "norm", "rotary"),
    "phi": ("layers", "final_layernorm", "rotary"),
}
SUPPORTED = tuple(ARCHITECTURES)


@dataclass(frozen=True)
class ModelParts:
    model_type: str
    embedding: nn.Embedding  # token embedding (input)
    layers: nn.ModuleList  # decoder layers, in order
    final_norm: nn.Module
    head: nn.Module  # the LM head (output embedding)
    n_layer: int
    n_head: int  # query heads
    n_kv_head: int  # key/value heads (fewer under grouped-query attention)
    head_dim: int
    d_model: int
    context: int  # the longest input the model was built for
    positions: Literal["absolute", "rotary"]

    @property
    def tied(self) -> bool:
        """Whether the head reads the input embedding's matrix (a replaced embedding then
        replaces the output side too)."""
        return getattr(self.head, "weight", None) is self.embedding.weight


def unsupported_message(kind: object) -> str:
    return (
        f"this analysis supports the causal LM architectures {', '.join(SUPPORTED)}; this model is {kind!r}"
    )


def model_parts(model: nn.Module) -> ModelParts:
    """The named parts of a supported causal LM, or InputError naming the supported ones."""
    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None) or type(model).__name__
    if kind not in ARCHITECTURES or not hasattr(model, "get_output_embeddings"):
        raise InputError(unsupported_message(kind))
    if getattr(cfg, "add_cross_attention", False) or getattr(cfg, "reorder_and_upcast_attn", False):
        raise InputError("GPT-2 variants with cross-attention or reordered attention are not supported")
    layers_name, norm_name, positions = ARCHITECTURES[kind]
    base = model.base_model
    n_head = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    return ModelParts(
        model_type=kind,
        embedding=model.get_input_embeddings(),
        layers=getattr(base, layers_name),
        final_norm=getattr(base, norm_name),
        head=model.get_output_embeddings(),
        n_layer=int(cfg.num_hidden_layers),
        n_head=n_head,
        n_kv_head=int(getattr(cfg, "num_key_value_heads", None) or n_head),
        head_dim=int(getattr(cfg, "head_dim", None) or d_model // n_head),
        d_model=d_model,
        context=int(cfg.max_position_embeddings),
        positions=positions,
    )
