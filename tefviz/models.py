"""Model loading, in one place: a causal LM and its tokenizer.

`load_causal_lm(source)` accepts a checkpoint name (a directory under the
checkpoints root), a directory path, or a Hugging Face hub name. Weights are read
from safetensors only. Attention maps need `attention="eager"`: transformers'
default SDPA path returns no attention weights.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from tefviz.checkpoints import (
    checkpoint_version,
    checkpoints_root,
    read_card,
    resolve_checkpoint,
    validate_checkpoint,
)
from tefviz.device import pick_device, pick_dtype
from tefviz.errors import CheckpointError, HubUnavailableError

Attention = Literal["sdpa", "eager"]
MAX_CONTEXT = 2048
HUB_TIMEOUT_S = 5.0  # one request to the hub before any download


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
    version: str = ""  # changes when a checkpoint's weights are rewritten (cache keys use it)
    extra: dict = field(default_factory=dict)

    @property
    def cache_key(self) -> str:
        """Names exactly these weights: where they come from, the model, and the weights version."""
        return f"{self.source}:{self.name}@{self.version}"

    @property
    def context_length(self) -> int:
        """The scoring window: the model's context, capped so a long-context hub model stays
        within CPU memory."""
        cfg = self.model.config
        n = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024)
        return int(min(n, MAX_CONTEXT))

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _local_dir(source: str | Path) -> Path | None:
    """A directory the source names: a checkpoint name under the root, or a path (CLI only)."""
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
    """For the CLI: a checkpoint name, a directory path, or a hub name."""
    local = _local_dir(source)
    if local is not None:
        return load_from_dir(local, attention, device, dtype)
    return load_from_hub(str(source), attention, device, dtype)


def load_checkpoint(name: str, attention: Attention = "sdpa", device=None, dtype=None) -> LoadedLM:
    """For the app: a checkpoint by name, only from inside the checkpoints root."""
    return load_from_dir(resolve_checkpoint(name), attention, device, dtype)


def _placement(device, dtype) -> tuple[torch.device, torch.dtype]:
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return dev, dtype or pick_dtype(dev)[0]


def _finish(model: PreTrainedModel, info: dict, tokenizer, what: str, error: type[Exception]) -> None:
    # from_pretrained silently random-initialises tensors absent from the file: refuse that
    missing = [k for k in info.get("missing_keys", []) if k not in _tied_keys(model)]
    if missing:
        raise error(f"{what} is missing weights for {len(missing)} tensors (e.g. {missing[0]})")
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def _ready(model: PreTrainedModel, attention: Attention) -> None:
    """Install the intervention layer now, while no other thread can be running this model
    (installing registers hooks). A model asked for with eager attention keeps it as it is."""
    from tefviz.lm import SUPPORTED, install

    if attention == "sdpa" and getattr(model.config, "model_type", None) in SUPPORTED:
        install(model)


def _tied_keys(model: PreTrainedModel) -> set[str]:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return set(tied) if not isinstance(tied, dict) else set(tied.keys())


def load_from_dir(path: Path, attention: Attention = "sdpa", device=None, dtype=None) -> LoadedLM:
    dev, dt = _placement(device, dtype)
    validate_checkpoint(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model, info = AutoModelForCausalLM.from_pretrained(
            path, use_safetensors=True, attn_implementation=attention, dtype=dt, output_loading_info=True
        )
    except Exception as e:  # transformers and tokenizers raise many types for bad files
        raise CheckpointError(f"checkpoint {path.name!r} could not be loaded", repr(e)) from e
    _finish(model, info, tokenizer, f"checkpoint {path.name!r}", CheckpointError)
    _ready(model.to(dev).eval(), attention)
    return LoadedLM(
        model,
        tokenizer,
        path.name,
        "checkpoint",
        dev,
        dt,
        read_card(path),
        path,
        version=checkpoint_version(path),
    )


def hub_preflight(name: str) -> None:
    """Refuse a hub name early, and say why: a local path, a model without safetensors weights or
    one that needs remote code, no network. Asks the local hub cache first, else one request with
    a short timeout (from_pretrained alone retries for about 40 s when offline)."""
    if Path(name).exists():
        raise HubUnavailableError(
            f"{name!r} names a path on this server, not a hub model: models are read only from "
            "checkpoints/ (choose one by name) or from the Hugging Face hub"
        )
    from huggingface_hub import try_to_load_from_cache

    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    cached = try_to_load_from_cache(name, "config.json")
    files: list[str] = []
    config: dict = {}
    if isinstance(cached, str):
        files = [p.name for p in Path(cached).parent.iterdir()]
        try:
            config = json.loads(Path(cached).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HubUnavailableError(f"the cached config.json of {name!r} is unreadable", repr(e)) from e
    # a cache holding the config but no weights is a download that broke off: ask the hub itself
    if not any(f.endswith(".safetensors") for f in files):
        if offline and cached is None:
            raise HubUnavailableError(
                f"could not load {name!r}: the Hugging Face hub is switched off "
                "(HF_HUB_OFFLINE=1) and the model is not in the local cache. Use a "
                "checkpoint under checkpoints/ instead."
            )
        if not offline:
            files, config = _ask_the_hub(name)
    if not any(f.endswith(".safetensors") for f in files):
        raise HubUnavailableError(
            f"{name!r} has no safetensors weights (only pickle files, which can run "
            "code when loaded): refused"
        )
    if config.get("auto_map"):
        raise HubUnavailableError(f"{name!r} needs its own Python code from the hub (auto_map): refused")


def _ask_the_hub(name: str) -> tuple[list[str], dict]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except GatedRepoError as e:
        raise HubUnavailableError(f"{name!r} is gated on the hub: it needs an access token", repr(e)) from e
    except RepositoryNotFoundError as e:
        raise HubUnavailableError(f"there is no model {name!r} on the Hugging Face hub", repr(e)) from e
    except Exception as e:  # httpx/requests connection errors, timeouts, DNS
        raise HubUnavailableError(
            f"could not load {name!r}: the Hugging Face hub cannot be reached (no network). "
            "Offline, use a checkpoint under checkpoints/ instead.",
            repr(e),
        ) from e
    if info.gated:  # its metadata is public, its files are not
        raise HubUnavailableError(f"{name!r} is gated on the hub: it needs an access token")
    return [s.rfilename for s in (info.siblings or [])], dict(info.config or {})


def load_from_hub(name: str, attention: Attention = "sdpa", device=None, dtype=None) -> LoadedLM:
    """A Hugging Face hub model by name (needs the network, or a populated local hub cache)."""
    if not HUB_NAME.match(name) or ".." in name:
        raise HubUnavailableError(f"{name!r} is not a Hugging Face model name (like 'gpt2' or 'org/model')")
    hub_preflight(name)
    dev, dt = _placement(device, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model, info = AutoModelForCausalLM.from_pretrained(
            name, use_safetensors=True, attn_implementation=attention, dtype=dt, output_loading_info=True
        )
    except Exception as e:  # the download broke off, not a causal LM, unreadable files
        raise HubUnavailableError(
            f"could not load {name!r} from the Hugging Face hub as a causal LM", repr(e)
        ) from e
    _finish(model, info, tokenizer, f"hub model {name!r}", HubUnavailableError)
    _ready(model.to(dev).eval(), attention)
    return LoadedLM(model, tokenizer, name, "hub", dev, dt)
