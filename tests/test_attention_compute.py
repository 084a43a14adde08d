"""Patterned attention computed four ways agrees; the benchmark runs each case in its own process;
patterns applied to a real GPT-2's attention."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from tefviz.attention.bench import _make_impl, _pattern_mod, bench_attention, block_gather_attention
from tefviz.attention.masks import dense_mask
from tefviz.attention.on_model import layer_masks, run_pattern
from tefviz.attention.patterns import build_pattern
from tefviz.cli import main
from tefviz.errors import InputError


@pytest.fixture(scope="module")
def qkv():
    torch.manual_seed(0)
    return tuple(torch.randn(1, 2, 256, 16) for _ in range(3))


def _reference(q, k, v, mod, n):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=dense_mask(mod, n))


@pytest.mark.parametrize(
    "pattern, params",
    [
        ("sliding", {"window": 64, "causal": 1}),
        ("bigbird", {"window": 32, "n_global": 8, "block": 32, "per_row": 2, "seed": 3}),
        ("blockwise", {"block": 64}),
    ],
)
def test_block_gather_is_exact(qkv, pattern, params):
    mod = _pattern_mod(pattern, params, 256)
    torch.testing.assert_close(
        block_gather_attention(*qkv, mod), _reference(*qkv, mod, 256), atol=1e-5, rtol=1e-4
    )


def test_mask_sdpa_and_compiled_flex_agree_with_the_reference(qkv):
    mod = _pattern_mod("sliding", {"window": 64, "causal": 1}, 256)
    ref = _reference(*qkv, mod, 256)
    for impl in ("mask_sdpa", "flex"):
        out = _make_impl(impl, mod, 256, torch.device("cpu"))(*qkv)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-3)


def test_bench_attention_cli_saves_every_case(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "attention",
                "--lengths",
                "256",
                "--window",
                "64",
                "--heads",
                "2",
                "--head-dim",
                "16",
                "--repeats",
                "1",
                "--impl",
                "dense_causal",
                "--impl",
                "block_gather",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert {r["impl"] for r in data["runs"]} == {"dense_causal", "block_gather"}
    assert all("median_s" in r and r["peak_mb_over_inputs"] >= 0 for r in data["runs"])
    assert "block_gather" in data["speedups_vs_dense"]
    assert "speed-up" in capsys.readouterr().out


def test_bench_attention_refuses_bad_settings(tmp_path):
    with pytest.raises(InputError, match="longer than the sequence"):
        bench_attention([256], "sliding", {"window": 4096, "causal": 1})
    assert (
        main(
            [
                "bench",
                "attention",
                "--lengths",
                "300",
                "--window",
                "64",
                "--impl",
                "dense_causal",
                "--out",
                str(tmp_path / "b.json"),
            ]
        )
        == 2
    )


def test_pattern_on_a_gpt2():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=32, n_layer=3, n_head=2)).eval()
    ids = torch.randint(0, 50, (40,))
    mask = dense_mask(build_pattern("sliding", 40, window=4, causal=1).mask_mod, 40)
    run = run_pattern(model, ids, mask, layers=[1, 2], show_layer=1)
    assert run.dense_perplexity != run.patterned_perplexity
    assert run.patterned_attention.shape == (2, 40, 40)
    assert (run.patterned_attention[:, ~mask] == 0).all()  # nothing outside the pattern
    torch.testing.assert_close(run.patterned_attention.sum(-1), torch.ones(2, 40))
    # the dense view is the unmodified model
    full = run_pattern(model, ids, torch.ones(40, 40, dtype=torch.bool), None, 0)
    assert full.dense_perplexity == pytest.approx(full.patterned_perplexity, rel=1e-5)
    with pytest.raises(InputError, match="do not exist"):
        layer_masks(mask, 3, [5])
