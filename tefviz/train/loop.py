"""What every trainer (LM, TEF heads, image classifier) shares: one learning-rate schedule over
whichever budget ends first, one atomic save of a run's state and its resume, and random windows
of a token stream.

A run directory holds `state/` (weights as safetensors, the optimiser's state, `config.json`,
`progress.json`), written whole into `state.partial/` and renamed over the old one, so an
interruption at any moment leaves the last complete state; `--run-dir` of an existing run resumes it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def warmup_cosine(
    lr: float,
    step: int,
    warmup_steps: int,
    max_steps: int,
    elapsed_s: float = 0.0,
    max_minutes: float | None = None,
    floor_frac: float = 0.0,
) -> float:
    """A linear warm-up over `warmup_steps` times a cosine decay from `lr` to `floor_frac * lr` over
    whichever budget ends first: `max_steps` steps or `max_minutes` of training time."""
    done = step / max(max_steps, 1)
    if max_minutes:
        done = max(done, elapsed_s / (max_minutes * 60))
    warm = min(1.0, (step + 1) / max(warmup_steps, 1))
    floor = lr * floor_frac
    return warm * (floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def sample_windows(
    tokens: np.ndarray,
    block: int,
    batch: int,
    rng: np.random.Generator,
    on_device: torch.Tensor | None = None,
) -> torch.Tensor:
    """`batch` random windows of `block + 1` tokens (inputs and next-token targets). With
    `on_device` (the same tokens, already on the GPU) the windows are gathered there."""
    starts = rng.integers(0, len(tokens) - block - 1, size=batch)
    if on_device is not None:
        idx = torch.from_numpy(starts).to(on_device.device)[:, None] + torch.arange(
            block + 1, device=on_device.device
        )
        return on_device[idx].long()
    return torch.from_numpy(np.stack([tokens[s : s + block + 1].astype(np.int64) for s in starts]))


def save_state(
    state: Path,
    weights: dict[str, dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    config: dict,
    progress: dict,
    **extra_json: dict,
) -> None:
    """Write a run's state atomically: `weights` maps a file stem to a state dict (each saved as
    `<stem>.safetensors`), then the optimiser, config, progress and any extra JSON files."""
    tmp = state.with_name(state.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for stem, sd in weights.items():
        save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(tmp / f"{stem}.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    for name, data in {"config": config, "progress": progress, **extra_json}.items():
        (tmp / f"{name}.json").write_text(json.dumps(data, indent=1))
    shutil.rmtree(state, ignore_errors=True)
    tmp.rename(state)


def saved_progress(state: Path) -> tuple[dict, dict] | None:
    """(config, progress) of a saved run state, or None when there is none to resume."""
    if not (state / "progress.json").is_file():
        return None
    return json.loads((state / "config.json").read_text()), json.loads((state / "progress.json").read_text())


def encode_blocks(tokenizer, text: str, batch: int = 8192) -> list[int]:
    """Token ids of `text`, encoded by paragraph blocks ("\\n\\n"-separated, each with its
    separator), in parallel batches: the same ids as block by block, with bounded memory and every
    core used by the Rust tokenizer."""
    blocks = [chunk + "\n\n" for chunk in text.split("\n\n")]
    backend = tokenizer.backend_tokenizer
    ids: list[int] = []
    for i in range(0, len(blocks), batch):
        for enc in backend.encode_batch(blocks[i : i + batch], add_special_tokens=False):
            ids.extend(enc.ids)
    return ids


def encode_split(tokenizer, path: Path, cache: Path) -> np.ndarray:
    """The text file `path` as token ids (memory-mapped), encoded once and cached in `cache`; the
    cache is written whole or not at all, so an interrupted encode never leaves a truncated one."""
    if not cache.is_file():
        ids = encode_blocks(tokenizer, path.read_text(encoding="utf-8"))
        tmp = cache.with_name(cache.stem + ".partial.npy")
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp, np.asarray(ids, dtype=np.uint16 if len(tokenizer) < 65536 else np.int32))
        tmp.rename(cache)
    return np.load(cache, mmap_mode="r")


def load_weights(state: Path, stem: str) -> dict[str, torch.Tensor]:
    return load_file(str(state / f"{stem}.safetensors"))


def load_optimizer(state: Path, optimizer: torch.optim.Optimizer, device: torch.device | str = "cpu") -> bool:
    """Restore the optimiser's state when it was saved (weights carried from another machine may
    come without it); False when there was none."""
    path = state / "optimizer.pt"
    if not path.is_file():
        return False
    optimizer.load_state_dict(torch.load(path, weights_only=True, map_location=device))
    return True
