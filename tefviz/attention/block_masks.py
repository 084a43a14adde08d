"""FlexAttention BlockMasks, built in one place so that none materialises the n x n mask.

`create_block_mask` run eagerly evaluates the mask_mod on every (query, key) cell at once: measured
+2.5 GB at 16,384 tokens and +40 GB at 65,536 on an H200, +2.6 GB at 16,384 on this project's CPU.
Through `torch.compile` it evaluates tile by tile (+66 MB at 65,536 on the H200), but it compiles
once per mask_mod (5-25 s on a 2-core CPU, minutes on a GPU's first run) and, past Dynamo's
recompile limit (8 mask_mods in one process, as on a server where users try patterns), it silently
falls back to the eager build: +672 MB for the ninth mask at 8,192 tokens, measured. So masks are
built here by evaluating the mask_mod one band of query tiles at a time (about 4 M cells, at least
one row of tiles, on the target device), reducing each tile to "any" and "all", and handing the
tile lists to `BlockMask.from_kv_blocks`: the same BlockMask as `create_block_mask` (tested), no
compile, memory bounded by the band (+24 MB at 16,384 tokens on the CPU, measured by a test; 1.7 s
there, 24 s at 65,536). Masks are cached per pattern, parameters, length, device and block size.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, and_masks

from tefviz.attention.patterns.base import MaskMod
from tefviz.attention.patterns.causal import causal_mod
from tefviz.errors import InputError

BLOCK = 128  # FlexAttention's default block: the kernels compute 128 x 128 tiles
BAND_CELLS = 1 << 22  # mask cells evaluated at once
CACHE_SIZE = 16

_cache: OrderedDict[tuple, BlockMask] = OrderedDict()
_lock = threading.Lock()


def build_block_mask(
    mod: MaskMod, n: int, device: torch.device | str = "cpu", block: int = BLOCK
) -> BlockMask:
    """The BlockMask of `mod` for n queries and keys (uncached). Like `create_block_mask`, a length
    that is not a multiple of the block is padded with masked-out cells, so edge tiles are partial."""
    if n < 1 or block < 1:
        raise InputError(
            f"a BlockMask needs at least one token and a block of at least 1, got n={n}, block={block}"
        )
    device = torch.device(device)
    tiles = math.ceil(n / block)
    zero = torch.zeros((), dtype=torch.long, device=device)
    keys = torch.arange(n, device=device)[None, :]
    partial = torch.zeros(tiles, tiles, dtype=torch.bool, device=device)
    full = torch.zeros_like(partial)
    rows = max(1, BAND_CELLS // (tiles * block * block))  # query tiles per band
    for start in range(0, tiles, rows):
        stop = min(tiles, start + rows)
        q = torch.arange(start * block, min(stop * block, n), device=device)[:, None]
        allowed = mod(zero, zero, q, keys).expand(len(q), n)  # only real cells: a mod may index tables
        padded = F.pad(allowed, (0, tiles * block - n, 0, (stop - start) * block - len(q)))
        cells = padded.reshape(stop - start, block, tiles, block)
        any_cell, all_cells = cells.any(3).any(1), cells.all(3).all(1)
        full[start:stop] = all_cells
        partial[start:stop] = any_cell & ~all_cells

    def tile_lists(chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = chosen.sum(-1, dtype=torch.int32)
        order = torch.sort(chosen.to(torch.int8), dim=-1, descending=True, stable=True).indices
        return count[None, None], order.to(torch.int32)[None, None]

    return BlockMask.from_kv_blocks(
        *tile_lists(partial), *tile_lists(full), BLOCK_SIZE=block, mask_mod=mod, seq_lengths=(n, n)
    )


def block_mask_for(
    key: tuple,
    mod: MaskMod,
    n: int,
    device: torch.device | str = "cpu",
    block: int = BLOCK,
    causal: bool = False,
) -> BlockMask:
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
        return {
            "skipped": int((self.table == 0).sum()),
            "partial": int((self.table == 1).sum()),
            "full": int((self.table == 2).sum()),
            "tiles": int(self.table.size),
        }


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
