"""FlexAttention BlockMasks (tefviz.attention.block_masks): tile maps checked against the dense mask,
the cache, and a long build that never materialises the n x n matrix."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tefviz.attention.block_masks import block_mask_for, block_table, pattern_key
from tefviz.attention.masks import dense_mask
from tefviz.attention.patterns import build_pattern

from .conftest import REPO

PATTERNS = [
    ("sliding", {"causal": 1, "window": 64}),
    ("blockwise", {"block": 100}),  # a shorter last block: 512 = 5 x 100 + 12
    ("bigbird", {}),
    ("dilated", {}),
]


def reference_table(allowed: np.ndarray, block: int) -> np.ndarray:
    """The tile map from the dense mask: a tile with any allowed cell is computed, one with all
    cells allowed is full. FlexAttention pads the mask with False up to a multiple of the block,
    so a ragged edge tile is never full."""
    n = allowed.shape[0]
    tiles = -(-n // block)
    padded = np.zeros((tiles * block, tiles * block), dtype=bool)
    padded[:n, :n] = allowed
    cells = padded.reshape(tiles, block, tiles, block).transpose(0, 2, 1, 3)
    return np.where(cells.all(axis=(2, 3)), 2, np.where(cells.any(axis=(2, 3)), 1, 0)).astype(np.int8)


@pytest.mark.parametrize("name,params", PATTERNS, ids=[p[0] for p in PATTERNS])
@pytest.mark.parametrize("n", [256, 512, 300])  # 300: not a multiple of any block below
def test_tile_map_matches_the_dense_mask(name, params, n):
    pattern = build_pattern(name, n, **params)
    allowed = dense_mask(pattern.mask_mod, n).numpy()
    for block in (32, 64, 128):
        tiles = block_table(block_mask_for(pattern_key(name, params), pattern.mask_mod, n, "cpu", block))
        assert tiles.n == n and tiles.block == block
        assert tiles.table.shape == (-(-n // block),) * 2
        np.testing.assert_array_equal(tiles.table, reference_table(allowed, block), err_msg=f"block {block}")
        counts = tiles.counts()
        assert counts["skipped"] + counts["partial"] + counts["full"] == counts["tiles"] == tiles.table.size
        assert tiles.computed_share == pytest.approx((counts["partial"] + counts["full"]) / counts["tiles"])


def test_ragged_edge_tiles_are_partial_not_full():
    """n = 300 in tiles of 128: FlexAttention accepts it, with a last tile of 44 tokens that it
    pads with masked-out cells, so even an all-allowed pattern evaluates the mask there."""

    def everything(b, h, q, kv):
        return q >= 0

    tiles = block_table(block_mask_for(("everything",), everything, 300, "cpu", 128))
    want = np.full((3, 3), 2, dtype=np.int8)
    want[2, :] = want[:, 2] = 1
    np.testing.assert_array_equal(tiles.table, want)


def test_the_cache_reuses_a_mask_per_key_length_and_block():
    pattern = build_pattern("sliding", 256, causal=1, window=16)
    key = pattern_key("sliding", pattern.params)
    first = block_mask_for(key, pattern.mask_mod, 256, "cpu", 64)
    assert block_mask_for(key, pattern.mask_mod, 256, "cpu", 64) is first
    assert block_mask_for(key, pattern.mask_mod, 512, "cpu", 64) is not first
    assert block_mask_for(key, pattern.mask_mod, 256, "cpu", 32) is not first
    assert block_mask_for(key, pattern.mask_mod, 256, "cpu", 64, causal=True) is not first


def _peak_growth_mb(script: str) -> dict:
    """Run `script` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LONG_BUILD = """
import json, resource
from tefviz.attention.block_masks import block_mask_for, block_table, pattern_key
from tefviz.attention.patterns import build_pattern

peak_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# one build first, so that the measurement below is the build itself, not first-use allocations
warm = build_pattern("sliding", 4096, causal=1, window=256)
block_mask_for(pattern_key("sliding", warm.params), warm.mask_mod, 4096)
n = 16384
p = build_pattern("sliding", n, causal=1, window=256)
before = peak_mb()
tiles = block_table(block_mask_for(pattern_key("sliding", p.params), p.mask_mod, n))
print(json.dumps({"before_mb": before, "growth_mb": peak_mb() - before,
                  "shape": list(tiles.table.shape), **tiles.counts()}))
"""


def test_a_long_mask_is_built_without_the_dense_matrix():
    """16,384 tokens: a boolean n x n matrix alone is 256 MiB, the eager build peaks ~2.9 GB higher on
    this CPU; the banded build grows the peak by the band, tens of MB."""
    got = _peak_growth_mb(LONG_BUILD)
    assert got["shape"] == [128, 128]
    assert got["full"] == 127 and got["partial"] == 254  # a causal window of 256: diagonal + one below
    assert got["growth_mb"] < 128, got


MANY_PATTERNS = """
import json, resource
from torch.nn.attention.flex_attention import or_masks
from tefviz.attention.block_masks import block_mask_for
from tefviz.attention.patterns import build_pattern

peak_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
names = ["global", "random", "sliding", "bigbird", "blockwise", "causal", "dilated"]
mods = [(n, build_pattern(n, 4096).mask_mod) for n in names]
mods.append(("global|sliding", or_masks(mods[0][1], mods[2][1])))
for key, mod in mods:  # eight patterns the page could show, one after the other
    block_mask_for((key,), mod, 4096)
p = build_pattern("sliding", 8192, causal=1, window=256)
before = peak_mb()
block_mask_for(("last",), p.mask_mod, 8192)
print(json.dumps({"growth_mb": peak_mb() - before}))
"""


def test_many_patterns_never_fall_back_to_the_dense_build():
    """The ninth mask_mod at 8,192 tokens: torch.compile(create_block_mask) hit Dynamo's recompile
    limit there and ran eagerly (+672 MB measured); the banded build stays small."""
    got = _peak_growth_mb(MANY_PATTERNS)
    assert got["growth_mb"] < 128, got


def test_block_mask_for_runs_on_cpu_tensors():
    pattern = build_pattern("dilated", 256)
    mask = block_mask_for(pattern_key("dilated", pattern.params), pattern.mask_mod, 256)
    assert mask.kv_num_blocks.device == torch.device("cpu")
