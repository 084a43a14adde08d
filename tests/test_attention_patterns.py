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


def gym_sliding_window(w):
    """attention-gym's generate_sliding_window(w) with its causal mask: the outside reference."""
    return lambda b, h, q, k: (q - k <= w) & (q >= k)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), w=st.integers(1, 12), causal=st.booleans())
def test_sliding_matches_definition(n, w, causal):
    if w > (n if causal else 2 * n):
        return
    m = dense_mask(build_pattern("sliding", n, window=w, causal=int(causal)).mask_mod, n)
    rule = (lambda q, k: 0 <= q - k <= w) if causal else (lambda q, k: abs(q - k) <= w // 2)
    want = brute(n, rule)
    assert torch.equal(m, want)


@pytest.mark.parametrize("n", [1, 7, 16, 33, 64])
@pytest.mark.parametrize("w", [1, 2, 3, 4, 5, 8, 13])
def test_causal_sliding_matches_attention_gym(n, w):
    if w > n:
        with pytest.raises(InputError, match="longer than the sequence"):
            build_pattern("sliding", n, window=w, causal=1)
        return
    m = dense_mask(build_pattern("sliding", n, window=w, causal=1).mask_mod, n)
    assert torch.equal(m, dense_mask(gym_sliding_window(w), n))
    # a w-token look-back plus the token itself: w + 1 keys once the look-back fits
    keys = m.sum(1)
    assert (keys[w:] == w + 1).all() and torch.equal(keys[:w], torch.arange(1, min(w, n) + 1))


def test_causal_sliding_odd_windows_are_their_own_and_non_causal_halves():
    n = 32
    causal = {w: dense_mask(build_pattern("sliding", n, window=w, causal=1).mask_mod, n) for w in (4, 5)}
    assert not torch.equal(causal[4], causal[5])
    assert int(causal[5].sum(1)[-1]) == 6 and int(causal[4].sum(1)[-1]) == 5
    for w in (4, 5):  # not causal: w // 2 on each side, so an odd w rounds down
        m = dense_mask(build_pattern("sliding", n, window=w, causal=0).mask_mod, n)
        assert torch.equal(m, brute(n, lambda q, k, w=w: abs(q - k) <= w // 2))
    assert torch.equal(
        dense_mask(build_pattern("sliding", n, window=5, causal=0).mask_mod, n),
        dense_mask(build_pattern("sliding", n, window=4, causal=0).mask_mod, n),
    )


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), w=st.integers(1, 10), d=st.integers(1, 5))
def test_dilated_matches_definition(n, w, d):
    if w >= n:
        return
    m = dense_mask(build_pattern("dilated", n, window=w, dilation=d).mask_mod, n)
    assert torch.equal(m, brute(n, lambda q, k: abs(q - k) <= w and (q - k) % d == 0))


def gym_blocks(b):
    """attention-gym style document/block mask: same block id q // b == k // b, any length."""
    return lambda bb, h, q, k: (q // b) == (k // b)


@settings(max_examples=30, deadline=None)
@given(blocks=st.integers(1, 8), b=st.integers(1, 6), g=st.integers(1, 4), extra=st.integers(0, 5))
def test_blockwise_and_global_match_definitions(blocks, b, g, extra):
    n = blocks * b + extra % b  # a shorter last block when extra % b
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


def test_blockwise_with_a_shorter_last_block():
    n, b = 100, 64
    m = dense_mask(build_pattern("blockwise", n, block=b).mask_mod, n)
    want = torch.zeros(n, n, dtype=torch.bool)
    want[:64, :64] = True  # block [0..63]
    want[64:, 64:] = True  # the shorter last block [64..99]
    assert torch.equal(m, want)
    assert torch.equal(m, dense_mask(gym_blocks(b), n))
    # a block longer than the sequence is one block: dense
    assert dense_mask(build_pattern("blockwise", 10, block=64).mask_mod, 10).all()


def test_random_blocks_with_a_shorter_last_block():
    n, b = 100, 16  # 7 blocks, the last one 4 tokens long
    p = build_pattern("random", n, block=b, per_row=2, seed=3)
    table = p.extras["table"]
    assert table.shape == (7, 7) and (table.sum(1) == 2).all()
    m = dense_mask(p.mask_mod, n)
    assert torch.equal(m, brute(n, lambda q, k: bool(table[q // b, k // b])))
    lengths = torch.tensor([16] * 6 + [4])
    assert int(m.sum()) == int((table.float() * lengths[:, None] * lengths[None, :]).sum())
    with pytest.raises(InputError, match="only 7 blocks"):
        build_pattern("random", n, block=b, per_row=8)
    big = build_pattern("bigbird", n, window=4, n_global=1, block=b, per_row=2, seed=3)
    assert torch.equal(big.extras["table"], table)
    want = brute(n, lambda q, k: abs(q - k) <= 2 or q < 1 or k < 1 or bool(table[q // b, k // b]))
    assert torch.equal(dense_mask(big.mask_mod, n), want)


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
    # the non-causal window of w (w/2 each side) and causal is the causal window of w // 2
    for w in (6, 7):
        sliding = build_pattern("sliding", n, window=w, causal=0).mask_mod
        both = dense_mask(and_masks(sliding, causal_mod), n)
        assert torch.equal(both, dense_mask(build_pattern("sliding", n, window=w // 2, causal=1).mask_mod, n))


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
    # a causal window of 4 looks back 4 tokens: a token deep in the sequence hears from 1 + 4L
    # tokens after L layers, and information moves at most 4 tokens forward per layer
    d = hop_distances(m, 10)
    assert int(d[14]) == 1 and int(d[15]) == 2 and int(d[18]) == 2 and int(d[19]) == 3
    assert int(d[9]) == -1
    assert max_hops(m) == -(-(n - 1) // 4)


def test_bad_parameters_get_clear_messages():
    with pytest.raises(InputError, match="longer than the sequence"):
        build_pattern("sliding", 8, window=40)
    with pytest.raises(InputError, match="whole prefix"):
        build_pattern("sliding", 8, window=9, causal=1)
    build_pattern("sliding", 8, window=9, causal=0)  # 4 each side still fits
    with pytest.raises(InputError, match="must lie in"):
        build_pattern("sliding", 8, window=0)
    with pytest.raises(InputError, match="must lie in"):
        build_pattern("dilated", 64, window=4, dilation=-1)
    with pytest.raises(InputError, match="unknown pattern"):
        build_pattern("nope", 8)
    with pytest.raises(InputError, match="no parameter"):
        build_pattern("causal", 8, window=3)
    with pytest.raises(InputError, match="at least 1"):
        build_pattern("causal", 0)
    assert set(PATTERNS) == {"causal", "sliding", "dilated", "global", "random", "blockwise", "bigbird"}
