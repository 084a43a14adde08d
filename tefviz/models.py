"""Model loading, in one place: a causal LM and its tokenizer.

`load_causal_lm(source)` accepts a checkpoint name (a directory under the
checkpoints root), a directory path, or a Hugging Face hub name. Weights are read
from safetensors only. Attention maps need `attention="eager"`: transformers'
default SDPA path returns no attention weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from tefviz.checkpoints import checkpoints_root, read_card, validate_checkpoint
from tefviz.device import pick_device, pick_dtype
from tefviz.errors import CheckpointError, HubUnavailableError

Attention = Literal["sdpa", "eager"]


@dataclass
class LoadedLM:
    model: PreTrainedModel
    tokenizer: object  # a transformers fast tokenizer
    name: str
    source: Literal["checkpoint", "hub"]
    device: torch.device
    dtype: torch.dtype
    card: dict | None = None
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def context_length(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024))

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _local_dir(source: str | Path) -> Path | None:
    """A directory the source names: a checkpoint name under the root, or a path."""
    if isinstance(source, Path):
        return source
    candidate = checkpoints_root() / source
    if "/" not in source and candidate.exists():
        return candidate
    p = Path(source)
    if p.is_absolute() or source.startswith((".", "~")) or p.exists():
        return p.expanduser()
    return None


def load_causal_lm(
    source: str | Path,
    attention: Attention = "sdpa",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> LoadedLM:
    """Load a causal LM and tokenizer; raise CheckpointError / HubUnavailableError clearly."""
    dev = device if isinstance(device, torch.device) else pick_device(device)
    dt = dtype or pick_dtype(dev)[0]
    local = _local_dir(source)
    kwargs = dict(use_safetensors=True, attn_implementation=attention, dtype=dt)
    if local is not None:
        validate_checkpoint(local)
        try:
            tokenizer = AutoTokenizer.from_pretrained(local)
            model = AutoModelForCausalLM.from_pretrained(local, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {local.name!r} could not be loaded", repr(e)) from e
        name, kind, card, path = local.name, "checkpoint", read_card(local), local
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            why = "the hub is switched off (HF_HUB_OFFLINE=1)" if offline else (
                "no network, or no such model with safetensors weights")
            raise HubUnavailableError(
                f"could not load {source!r} from the Hugging Face hub: {why}. "
                "Offline, use a checkpoint under checkpoints/ instead.",
                repr(e),
            ) from e
        name, kind, card, path = str(source), "hub", None, None
    model.to(dev).eval()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedLM(model, tokenizer, name, kind, dev, dt, card, path)
