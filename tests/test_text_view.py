"""The Text page's core: encoding one window, the scoring pass, the filtered pass, the table."""

from __future__ import annotations

import math

import pytest
import torch

from tefviz.errors import InputError
from tefviz.models import load_causal_lm
from tefviz.text.filtering import DropPolicy
from tefviz.text.scorers import get_scorer
from tefviz.text.view import encode_for_view, filter_text, score_text_tokens, token_rows


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    return load_causal_lm(tiny_lm_dir, device=torch.device("cpu"), dtype=torch.float32)


def test_one_window_with_the_cut_counted(lm):
    pieces, ids, cut, cut_chars = encode_for_view(lm, "The cat sat on the mat. " * 50)
    assert len(ids) == lm.context_length and cut > 0 and cut_chars == 0
    assert len(pieces) == len(ids)
    with pytest.raises(InputError, match="empty"):
        encode_for_view(lm, " \n\t ")


def test_scoring_then_filtering_and_the_table(lm):
    scorer = get_scorer("attention")
    scored = score_text_tokens(lm, scorer, "It is a truth universally acknowledged, that a single man.")
    n = len(scored.ids)
    assert scored.scores.shape == (2, n, n) and math.isfinite(scored.dense_perplexity)
    assert scored.shares(1).sum() == pytest.approx(1.0, abs=1e-5)
    full = filter_text(lm, scorer, scored, 1.0, DropPolicy("evict"))
    assert full.perplexity == pytest.approx(scored.dense_perplexity, rel=1e-4)
    some = filter_text(lm, scorer, scored, 0.4, DropPolicy("evict"))
    rows = token_rows(scored, some, layer=1)
    assert len(rows) == n and rows[0]["loss_dense_bits"] is None
    assert sorted(r["rank"] for r in rows) == list(range(1, n + 1))
    assert any(not r["kept"] for r in rows) and rows[-1]["kept"]  # the last query keeps itself
    changed = [r["loss_change_bits"] for r in rows[1:]]
    assert any(abs(c) > 1e-6 for c in changed)


def test_leave_one_out_refuses_long_texts(lm, monkeypatch):
    scorer = get_scorer("leave_one_out")
    monkeypatch.setattr(type(scorer), "max_tokens", 8)
    with pytest.raises(InputError, match="at most 8 tokens"):
        score_text_tokens(lm, scorer, "one two three four five six seven eight nine ten eleven twelve")
