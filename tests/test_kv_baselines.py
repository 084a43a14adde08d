"""The KV-cache baselines (StreamingLLM, H2O, TOVA, SnapKV, key norm): shapes, causality, and a
known answer per method, on a tiny GPT-2 and a tiny Llama."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from tefviz.lm import capture_qkv
from tefviz.text.filtering import DropPolicy, dense_pass
from tefviz.text.keep import causal_keep_mask
from tefviz.text.scorers import SCORERS, get_scorer
from tefviz.text.scorers.h2o import h2o_keys
from tefviz.text.scorers.snapkv import snapkv_scores
from tests.lm_zoo import tiny_model

KV = ("streaming_llm", "h2o", "tova", "snapkv", "key_norm")
N = 40


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    return {"gpt2": gpt2, "llama": tiny_model("llama", vocab=97)}


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 97, (N,), generator=torch.Generator().manual_seed(1))


def _small(name):  # windows that fit a 40-token text
    return get_scorer(name, window=8, kernel=3) if name == "snapkv" else get_scorer(name)


def test_registered_with_what_the_text_page_reads():
    for name in KV:
        cls = SCORERS[name]
        assert cls.name == name and cls.label and cls.description and cls.max_tokens is None


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("name", KV)
def test_scores_shape_and_filtering(models, ids, arch, name):
    model = models[arch]
    scorer = _small(name)
    scores = scorer.score(model, ids)
    v = scores.values
    expected = {"streaming_llm": (1, N), "key_norm": (2, N)}.get(name, (2, N, N))
    assert tuple(v.shape) == expected and (v >= 0).all() and torch.isfinite(v).all()
    if v.dim() == 3:  # per query: nothing above the diagonal
        assert (v.triu(1) == 0).all()
    dense = dense_pass(model, ids)
    full = scorer.filtered(model, ids, scores, 1.0, DropPolicy("evict"))
    torch.testing.assert_close(full.nll, dense.nll, atol=1e-4, rtol=1e-4)
    for mode in ("evict", "skip"):
        half = scorer.filtered(model, ids, scores, 0.5, DropPolicy(mode))
        assert 0 < half.masks.kept_fraction < 1 and half.nll.shape == dense.nll.shape


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("name", KV)
def test_decisions_are_causal(models, ids, arch, name):
    """Changing the last 8 tokens changes no score, keep decision or loss of an earlier query."""
    model, scorer, m = models[arch], _small(name), N - 8
    other = ids.clone()
    other[m:] = (other[m:] + 1 + torch.arange(8)) % 97
    a, b = scorer.score(model, ids).values, scorer.score(model, other).values
    if a.dim() == 3:
        torch.testing.assert_close(a[:, :m, :m], b[:, :m, :m], atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(a[:, :m], b[:, :m], atol=1e-5, rtol=1e-4)
    for t in (0.8, 0.5):
        fa = scorer.filtered(model, ids, scorer.score(model, ids), t, DropPolicy("evict"))
        fb = scorer.filtered(model, other, scorer.score(model, other), t, DropPolicy("evict"))
        assert torch.equal(fa.masks.keys[:, :m, :m], fb.masks.keys[:, :m, :m])
        # query i predicts token i+1: predictions from queries 0..m-2 only see tokens < m
        torch.testing.assert_close(fa.nll[: m - 1], fb.nll[: m - 1], atol=1e-5, rtol=1e-4)


def test_streaming_llm_keeps_four_sinks_and_a_recent_window(models, ids):
    model = models["gpt2"]
    scorer = get_scorer("streaming_llm")
    scores = scorer.score(model, ids)
    keys = scorer.filtered(model, ids, scores, 0.5, DropPolicy("evict")).masks.keys
    last = keys[0, N - 1]
    assert last[:4].all() and last[N - 20 :].all() and int(last.sum()) == 24
    plain = scorer.filtered(model, ids, scores, 0.5, DropPolicy("evict", sink=False)).masks.keys[0, N - 1]
    assert plain[N - 20 :].all() and int(plain.sum()) == 20  # the paper's window-attention baseline


def test_h2o_spends_half_the_budget_on_the_recent_window():
    """Query 9 sees scores [5, .1, 3, .1, 2, .1, .1, .1, .1, .1]: at t = 0.95 the heavy-hitter
    rule keeps the sink, keys 2 and 4 and itself; H2O keeps as many, trading key 4 for key 8."""
    v = torch.tensor([5, 0.1, 3, 0.1, 2, 0.1, 0.1, 0.1, 0.1, 0.1])
    acc = v.expand(10, 10).tril()[None]
    attention = causal_keep_mask(acc, 0.95)[0, 9]
    assert attention.nonzero().flatten().tolist() == [0, 2, 4, 9]
    keys = h2o_keys(acc, 0.95)[0, 9]
    assert keys.nonzero().flatten().tolist() == [0, 2, 8, 9]
    # without any heavy-hitter budget (t = 0) it keeps only the sink and itself, as attention does
    assert h2o_keys(acc, 0.0)[0, 9].nonzero().flatten().tolist() == [0, 9]


def test_h2o_scores_are_accumulated_attention(models, ids):
    model = models["gpt2"]
    h2o = get_scorer("h2o").score(model, ids).values
    torch.testing.assert_close(h2o, get_scorer("attention").score(model, ids).values, atol=1e-6, rtol=1e-5)


def test_tova_scores_are_the_query_s_own_attention(models, ids):
    """Row i is softmax(q_i k_j / sqrt(d)) over j <= i, averaged over heads, from the real q/k."""
    for model in models.values():
        scores = get_scorer("tova").score(model, ids).values
        for layer in range(2):
            q, k, _ = capture_qkv(model, ids, layer)
            logits = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
            logits = logits.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), float("-inf"))
            torch.testing.assert_close(scores[layer], logits.softmax(-1).mean(0), atol=1e-5, rtol=1e-4)
    # a query keeps its most-attended keys: every kept key outranks every dropped one
    keys = causal_keep_mask(scores, 0.6, sink=False)
    for layer in range(2):
        row, kept = scores[layer, N - 1], keys[layer, N - 1].clone()
        kept[N - 1] = False  # itself, kept by rule
        dropped = ~keys[layer, N - 1]
        assert row[kept].min() >= row[dropped].max()


def test_snapkv_pools_the_observation_window_s_votes():
    """Queries >= 5 all look at key 5. With a window of 3 and max-pooling over 3 keys, query 11
    (window 9..11) votes 3 for key 5, spread to keys 4..6; for query 7 key 5 is inside its
    window, so it is kept anyway and pooled as zero."""
    attn = torch.eye(12)
    attn[5:, :] = 0
    attn[5:, 5] = 1
    scores = snapkv_scores(attn[None], window=3, kernel=3, pooling="max")[0]
    assert scores[11].nonzero().flatten().tolist() == [4, 5, 6]
    assert torch.allclose(scores[11, 4:7], torch.tensor(3.0))
    assert (scores[7] == 0).all()


def test_snapkv_always_keeps_its_window(models, ids):
    model = models["gpt2"]
    scorer = get_scorer("snapkv", window=8, kernel=3)
    keys = scorer.filtered(model, ids, scorer.score(model, ids), 0.0, DropPolicy("evict")).masks.keys
    for i in (10, 25, N - 1):
        assert keys[:, i, i - 7 : i + 1].all()


def test_key_norm_ranks_smaller_keys_higher(models, ids):
    for model in models.values():
        scores = get_scorer("key_norm").score(model, ids).values
        for layer in range(2):
            _, k, _ = capture_qkv(model, ids, layer)
            torch.testing.assert_close(scores[layer], 1 / k.norm(dim=-1).mean(0), atol=1e-5, rtol=1e-4)
    # hand-made: norms 1, 4, 2, 8 -> the keys of norm 1 and 2 are kept first
    keys = causal_keep_mask(1 / torch.tensor([1.0, 4.0, 2.0, 8.0]), 0.8, sink=False)
    assert keys[3].tolist() == [True, False, True, True]  # (the query keeps itself)
    assert causal_keep_mask(1 / torch.tensor([1.0, 4.0, 2.0, 8.0]), 0.6, sink=False)[2].tolist() == [
        True,
        False,
        True,
        False,
    ]
