"""Embedding compressors: reconstruction where theory says exact, bytes, bad settings, and a TT
lookup that never builds the V x D matrix."""

from __future__ import annotations

import tracemalloc

import pytest
import torch

from tefviz.embeddings.compressors import COMPRESSORS, compress, dense_bytes
from tefviz.embeddings.compressors.quantised import absmax_quantise
from tefviz.embeddings.compressors.tensor_train import TTEmbedding, _factor3, vocab_shape
from tefviz.errors import InputError


@pytest.fixture(scope="module")
def weight():
    g = torch.Generator().manual_seed(0)
    return torch.randn(320, 32, generator=g) * 0.05


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_full_rank_settings_reconstruct_exactly(weight):
    assert _rel(compress("low_rank", weight, rank=32).matrix(), weight) < 1e-5
    tt = compress("tensor_train", weight, rank1=512, rank2=512)
    assert _rel(tt.matrix(), weight) < 1e-4
    assert _rel(compress("lora_shared", weight, bits=2, rank=32).matrix(), weight) < 1e-5


def test_error_falls_as_budget_grows(weight):
    for name, small, big in [
        ("low_rank", {"rank": 4}, {"rank": 16}),
        ("tensor_train", {"rank1": 2, "rank2": 2}, {"rank1": 8, "rank2": 8}),
        ("quantised", {"bits": 2}, {"bits": 8}),
        ("dynamic_bits", {"high_share": 0}, {"high_share": 100}),
    ]:
        lo, hi = compress(name, weight, **small), compress(name, weight, **big)
        assert _rel(hi.matrix(), weight) < _rel(lo.matrix(), weight), name
        assert hi.bytes > lo.bytes, name


def test_bytes_are_counted_as_stored(weight):
    v, d = weight.shape
    assert dense_bytes(v, d) == v * d * 2
    assert compress("quantised", weight, bits=4).bytes == v * d // 2 + v * 2
    assert compress("low_rank", weight, rank=8).bytes == 8 * (v + d) * 2
    dyn = compress("dynamic_bits", weight, high_bits=8, low_bits=2, high_share=25)
    assert dyn.bytes == (80 * 8 + 240 * 2) * d // 8 + v * 2
    # the high-precision tokens are the first ids (earliest merges)
    assert (dyn.bits_per_row[:80] == 8).all() and (dyn.bits_per_row[80:] == 2).all()


def test_absmax_levels():
    rows = torch.tensor([[1.0, -0.5, 0.25, 0.0]])
    assert absmax_quantise(rows, 8).sub(rows).abs().max() < 1 / 127
    assert set(absmax_quantise(rows, 2).flatten().tolist()) <= {-1.0, 0.0, 1.0}
    assert set(absmax_quantise(rows, 1).abs().flatten().tolist()) <= {0.0, 0.4375}


def test_tt_lookup_matches_the_matrix_and_never_builds_it():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8192, 256, generator=g)
    tt = compress("tensor_train", w, rank1=16, rank2=16)
    assert isinstance(tt, TTEmbedding) and tt.v_shape == (16, 16, 32) and tt.d_shape == _factor3(256)
    ids = torch.tensor([0, 5, 4095, 8191])
    full = tt.matrix()
    torch.testing.assert_close(tt.lookup(ids), full[ids])
    tracemalloc.start()
    tt.lookup(ids)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # tracemalloc does not see torch's allocator; measure the tensors the lookup creates instead
    with torch.autograd.profiler.profile(profile_memory=True) as prof:
        tt.lookup(ids)
    torch_peak = max((e.cpu_memory_usage for e in prof.function_events), default=0)
    assert torch_peak < 8192 * 256 * 4 / 100  # far below one V x D float matrix
    assert peak < 8192 * 256 * 4 / 100


def test_vocab_shapes():
    assert vocab_shape(8192) == (16, 16, 32)
    assert vocab_shape(320) == (5, 8, 8)
    a, b, c = vocab_shape(50257)  # GPT-2's prime-ish vocabulary gets padded
    assert 50257 <= a * b * c <= 50257 * 1.02 and max(a, b, c) < 75


def test_bad_settings_get_clear_messages(weight):
    with pytest.raises(InputError, match="must lie in"):
        compress("quantised", weight, bits=0)
    with pytest.raises(InputError, match="must lie in"):
        compress("tensor_train", weight, rank1=0)
    with pytest.raises(InputError, match="no setting"):
        compress("low_rank", weight, bits=3)
    with pytest.raises(InputError, match="unknown compressor"):
        compress("zip", weight)
    with pytest.raises(InputError, match="token ids"):
        compress("tensor_train", weight).lookup(torch.tensor([320]))
    assert set(COMPRESSORS) == {"tensor_train", "low_rank", "quantised", "dynamic_bits", "lora_shared"}


def test_finetune_after_compression_lowers_perplexity(tiny_lm_dir, tiny_corpus, tmp_path, capsys):
    """The CLI fine-tunes only the compressed factors; a random tiny LM's held-out perplexity falls."""
    import json as _json

    from tefviz.cli import main

    out = tmp_path / "ft.json"
    args = [
        "train",
        "embeddings",
        "--method",
        "low_rank",
        "--knob",
        "rank=4",
        "--base",
        str(tiny_lm_dir),
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(tmp_path / "run"),
        "--steps",
        "25",
        "--batch-size",
        "4",
        "--block-size",
        "32",
        "--lr",
        "0.05",
        "--heldout-windows",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    r = _json.loads(out.read_text())
    assert r["perplexity_after"] < r["perplexity_before"] and r["steps"] == 25
    assert (tmp_path / "run" / "factors.safetensors").is_file()
    capsys.readouterr()
    assert main([*args[:3], "quantised", "--knob", "bits=4", *args[6:]]) == 2
    assert "nothing to fine-tune" in capsys.readouterr().err
    assert main([*args[:5], "rank=0", *args[6:]]) == 2
    assert "rank must lie in" in capsys.readouterr().err
