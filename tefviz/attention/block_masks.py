"""FlexAttention BlockMasks, built in one place so that none materialises the n x n mask.

`create_block_mask` run eagerly evaluates the mask_mod on every (query, key) cell at once: measured
+2.5 GB at 16,384 tokens and +40 GB at 65,536 on an H200, +2.6 GB at 16,384 on this project's CPU.
Built through `torch.compile` it evaluates block by block (+66 MB at 65,536 on the H200, +93 MB on
the CPU), but the first compile is slow (about 25 s on a 2-core CPU, minutes on a GPU's first
run), so masks are cached per pattern, parameters, length, device and block size, and short
sequences, whose whole mask is small, are built eagerly with no compile at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.attention.flex_attention import BlockMask, and_masks, create_block_mask

from tefviz.attention.patterns.base import MaskMod
from tefviz.attention.patterns.causal import causal_mod

BLOCK = 128  # FlexAttention's default block: the kernels compute 128 x 128 tiles
EAGER_MAX_CELLS = 2048 * 2048  # below this the eager build's n^2 evaluation costs < ~70 MB
CACHE_SIZE = 16

_cache: OrderedDict[tuple, BlockMask] = OrderedDict()
_lock = threading.Lock()
_compiled = None


def _compiled_builder():
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(create_block_mask)
    return _compiled


def build_block_mask(mod: MaskMod, n: int, device: torch.device | str = "cpu", block: int = BLOCK,
                     compiled: bool | None = None) -> BlockMask:
    """The BlockMask of `mod` for n queries and keys (uncached). compiled=None: compile unless
    the whole n x n evaluation is small."""
    if compiled is None:
        compiled = n * n > EAGER_MAX_CELLS
    build = _compiled_builder() if compiled else create_block_mask
    return build(mod, None, None, n, n, device=str(device), BLOCK_SIZE=block)


def block_mask_for(key: tuple, mod: MaskMod, n: int, device: torch.device | str = "cpu",
                   block: int = BLOCK, causal: bool = False) -> BlockMask:
    """The cached BlockMask of a configured pattern. `key` names the pattern and its parameters
    (e.g. `("sliding", (("causal", 1), ("window", 256)))`): masks are reused per key, length,
    device, block and causality; `causal` intersects the pattern with q >= k."""
    full_key = (key, n, str(torch.device(device)), block, causal)
    with _lock:
        if full_key in _cache:
            _cache.move_to_end(full_key)
            return _cache[full_key]
    mask = build_block_mask(and_masks(mod, causal_mod) if causal else mod, n, device, block)
    with _lock:
        _cache[full_key] = mask
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return mask


def pattern_key(name: str, params: dict) -> tuple:
    """A hashable name for a pattern and its parameters."""
    return (name, tuple(sorted(params.items())))


@dataclass(frozen=True)
class BlockTable:
    """Which tiles FlexAttention computes: 0 skipped, 1 partial (the mask_mod is applied inside),
    2 full (computed without evaluating the mask)."""

    table: np.ndarray  # (query blocks, key blocks) int8
    block: int
    n: int

    @property
    def computed_share(self) -> float:
        return float((self.table > 0).mean())

    def counts(self) -> dict:
        return {"skipped": int((self.table == 0).sum()), "partial": int((self.table == 1).sum()),
                "full": int((self.table == 2).sum()), "tiles": int(self.table.size)}


def block_table(mask: BlockMask) -> BlockTable:
    """The tile map of a BlockMask (its first batch row and head), from the block indices only."""
    q_blocks = mask.kv_num_blocks.shape[-1]
    k_blocks = mask.kv_indices.shape[-1]
    table = np.zeros((q_blocks, k_blocks), dtype=np.int8)

    def mark(num: torch.Tensor | None, idx: torch.Tensor | None, value: int) -> None:
        if num is None or idx is None:
            return
        num, idx = num[0, 0].cpu().numpy(), idx[0, 0].cpu().numpy()
        for row in range(q_blocks):
            table[row, idx[row, : num[row]]] = value

    mark(mask.kv_num_blocks, mask.kv_indices, 1)
    mark(mask.full_kv_num_blocks, mask.full_kv_indices, 2)
    n = mask.seq_lengths[0]
    return BlockTable(table, mask.BLOCK_SIZE[0], int(n))
