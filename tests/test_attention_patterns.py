"""Attention patterns: each mask_mod against a brute-force definition, the lecture's examples,
composition, dense vs chunked counting, information flow, and clear errors for bad parameters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention.flex_attention import and_masks, create_mask

from tefviz.attention.flow import hop_distances, hops, max_hops, receptive_field
from tefviz.attention.masks import MAX_DENSE, active_cells, dense_mask, density_image, pattern_cost
from tefviz.attention.patterns import PATTERNS, build_pattern
from tefviz.attention.patterns.causal import causal_mod
from tefviz.errors import InputError


def brute(n, rule):
    return torch.tensor([[bool(rule(q, k)) for k in range(n)] for q in range(n)])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), w=st.integers(1, 12), causal=st.booleans())
def test_sliding_matches_definition(n, w, causal):
    if w > 2 * n:
        return
    m = dense_mask(build_pattern("sliding", n, window=w, causal=int(causal)).mask_mod, n)
    want = brute(n, lambda q, k: abs(q - k) <= w // 2 and (q >= k or not causal))
    assert torch.equal(m, want)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), w=st.integers(1, 10), d=st.integers(1, 5))
def test_dilated_matches_definition(n, w, d):
    if w >= n:
        return
    m = dense_mask(build_pattern("dilated", n, window=w, dilation=d).mask_mod, n)
    assert torch.equal(m, brute(n, lambda q, k: abs(q - k) <= w and (q - k) % d == 0))


@settings(max_examples=30, deadline=None)
@given(blocks=st.integers(1, 8), b=st.integers(1, 6), g=st.integers(1, 4))
def test_blockwise_and_global_match_definitions(blocks, b, g):
    n = blocks * b
    m = dense_mask(build_pattern("blockwise", n, block=b).mask_mod, n)
    assert torch.equal(m, brute(n, lambda q, k: q // b == k // b))
    if g <= n:
        m = dense_mask(build_pattern("global", n, n_global=g).mask_mod, n)
        assert torch.equal(m, brute(n, lambda q, k: q < g or k < g or q == k))


def test_random_blocks_are_seeded_and_have_r_per_row():
    a = build_pattern("random", 64, block=8, per_row=3, seed=5)
    b = build_pattern("random", 64, block=8, per_row=3, seed=5)
    c = build_pattern("random", 64, block=8, per_row=3, seed=6)
    ma, mb, mc = (dense_mask(p.mask_mod, 64) for p in (a, b, c))
    assert torch.equal(ma, mb) and not torch.equal(ma, mc)
    assert (a.extras["table"].sum(1) == 3).all()
    assert active_cells(a.mask_mod, 64) == 8 * 3 * 8 * 8


def test_the_lectures_window_of_4_has_about_5n_cells():
    n = 1000
    cells = active_cells(build_pattern("sliding", n, window=4, causal=0).mask_mod, n)
    assert cells == 5 * n - 6  # 5 per row, fewer at the two edges
    assert pattern_cost(build_pattern("sliding", n, window=4, causal=0).mask_mod, n).density < 0.006


def test_the_lectures_cat_glb_sad_example():
    tokens = ["GLB", "the", "cat", "is", "very", "sad"]
    n = len(tokens)
    window = build_pattern("sliding", n, window=2, causal=0)
    with_global = build_pattern("bigbird", n, window=2, n_global=1, block=1, per_row=0)
    cat, sad = tokens.index("cat"), tokens.index("sad")
    d, path = hops(dense_mask(with_global.mask_mod, n), cat, sad)
    assert d == 2 and [tokens[i] for i in path] == ["cat", "GLB", "sad"]
    d, path = hops(dense_mask(window.mask_mod, n), cat, sad)
    assert d == 3 and [tokens[i] for i in path] == ["cat", "is", "very", "sad"]


def test_composition_with_and_masks_gives_causal_sliding():
    n = 30
    sliding = build_pattern("sliding", n, window=6, causal=0).mask_mod
    both = dense_mask(and_masks(sliding, causal_mod), n)
    assert torch.equal(both, dense_mask(build_pattern("sliding", n, window=6, causal=1).mask_mod, n))


def test_dense_matches_flex_create_mask():
    n = 48
    p = build_pattern("bigbird", n, window=6, n_global=2, block=8, per_row=2, seed=1)
    flex = create_mask(p.mask_mod, 1, 1, n, n, device="cpu")[0, 0]
    assert torch.equal(dense_mask(p.mask_mod, n), flex)


def test_density_image_agrees_with_the_dense_matrix():
    n = 100
    p = build_pattern("sliding", n, window=10, causal=1)
    img = density_image(p.mask_mod, n, bins=10)
    dense = dense_mask(p.mask_mod, n).float().reshape(10, 10, 10, 10).mean((1, 3))
    torch.testing.assert_close(img, dense)
    assert active_cells(p.mask_mod, n) == int(dense_mask(p.mask_mod, n).sum())


def test_large_lengths_never_materialise_n_squared():
    n = 16_384
    p = build_pattern("sliding", n, window=256, causal=1)
    img = density_image(p.mask_mod, n, bins=128)
    assert img.shape == (128, 128) and 0 < float(img.mean()) < 0.02
    with pytest.raises(InputError, match="too many for a dense matrix"):
        dense_mask(p.mask_mod, MAX_DENSE + 1)


def test_receptive_field_grows_by_the_window_per_layer():
    n = 64
    m = dense_mask(build_pattern("sliding", n, window=4, causal=1).mask_mod, n)
    rf = receptive_field(m, 3)
    assert rf[0] < rf[1] < rf[2]
    # a token deep in the sequence hears from 1 + 2L tokens after L layers
    d = hop_distances(m, 10)
    assert int(d[16]) == 3 and int(d[9]) == -1
    assert max_hops(m) == (n - 1 + 1) // 2


def test_bad_parameters_get_clear_messages():
    with pytest.raises(InputError, match="longer than the sequence"):
        build_pattern("sliding", 8, window=40)
    with pytest.raises(InputError, match="must lie in"):
        build_pattern("sliding", 8, window=0)
    with pytest.raises(InputError, match="must lie in"):
        build_pattern("dilated", 64, window=4, dilation=-1)
    with pytest.raises(InputError, match="not a multiple of the block"):
        build_pattern("blockwise", 100, block=64)
    with pytest.raises(InputError, match="unknown pattern"):
        build_pattern("nope", 8)
    with pytest.raises(InputError, match="no parameter"):
        build_pattern("causal", 8, window=3)
    with pytest.raises(InputError, match="at least 1"):
        build_pattern("causal", 0)
    assert set(PATTERNS) == {"causal", "sliding", "dilated", "global", "random", "blockwise", "bigbird"}
