"""The core view functions the Attention, Text and Generation pages draw from (no Streamlit)."""

from __future__ import annotations

import numpy as np

from tefviz.attention import view as attention
from tefviz.generate import view as generate
from tefviz.text import view as text


def test_pattern_choice_key_mask_and_length_unit():
    alone = attention.PatternChoice("sliding", {"window": 2, "causal": 0})
    both = attention.PatternChoice("sliding", {"window": 2, "causal": 0}, "global", {"n_global": 1}, "or")
    assert alone.key != both.key and both.length_unit() >= 1
    views = attention.mask_views(both.mask_mod(16), 16)
    assert views["dense"].shape == (16, 16) and "flow_mask" in views
    assert attention.cost_metrics(views["cost"])[0].label == "Active cells"
    flow = attention.flow_view(views, 2, 5, 3, attention.token_labels(16))
    assert flow.reached and "2 hop" in flow.message and "GLB" in flow.message
    assert [r["layers"] for r in flow.rows()] == [1, 2, 3]


def test_flex_blocks_and_the_nearest_offered_block():
    assert attention.flex_blocks(512) == [16, 32, 64, 128]
    assert attention.flex_blocks(16384) == [64, 128]
    assert attention.nearest_block(16, [64, 128]) == 64
    assert attention.nearest_block(None, [64, 128]) is None
    assert attention.nearest_block(128, [64, 128]) is None
    assert attention.param_bounds(1, 10_000, "int", 5000, 16) == (64, 64)
    assert attention.layers_fit([0, 1], 2) and not attention.layers_fit([2], 2)
    assert not attention.layers_fit(None, 2)


def test_text_held_out_tables_and_rows():
    class Card:
        def __init__(self, name, metrics):
            self.name, self.fingerprint, self.card = name, "f", {"metrics": metrics}

    table = {
        "scorers": {"A": {"mode": "evict", "rows": [{"t": 1.0}]}},
        "reference": {"perplexity": 3.0, "windows": 2, "block": 64},
    }
    tables, source = text.heldout_tables(
        [Card("x", {"heldout_table": table}), Card("y", {"heldout_tables": {"code": table}})]
    )
    assert sorted(tables) == ["austen", "code"] and source["code"] == "y:f"
    assert text.default_domain(tables) == "austen" and text.default_domain({"code": table}) == "code"
    assert text.heldout_rows(table) == [{"scorer": "A", "mode": "evict", "t": 1.0}]
    assert "3.00 over 2 windows of 64" in text.heldout_caption(table, "Austen")


def test_text_headline_and_strips():
    scored = text.ScoredText(
        ["a", "b", "c"], [1, 2, 3], np.array([[1.0, 2.0, 3.0]]), np.array([1.0, 2.0]), 0, 0
    )
    filtered = text.FilteredText(np.array([1.0, 3.0]), np.array([[True, False, True]]), 0.8)
    kept = filtered.kept_last[0]
    m = {x.label: x.value for x in text.headline_metrics(scored, filtered, kept)}
    assert m["Tokens kept (last token's view)"] == "2 of 3" and m["Kept fraction"] == "80.0%"
    strips = text.token_strips(scored, filtered, kept, 0)
    assert len(strips.rows) == 3 and strips.change[0] is None and "line-through" in strips.shares
    assert text.heldout_point(scored, filtered) is not None


def test_generate_prompt_and_ranges():
    assert generate.sample_prompt("word " * 100, 20) == "word word word word"
    assert generate.sample_prompt("short") == "short"
    assert next(iter(generate.policy_choices(["t"]))) == "tef:t"
    lo, hi, default = generate.budget_range(128)
    assert lo < default <= hi <= 128
    assert generate.new_tokens_range(128) == (120, 64)
    p = generate.Prompt([1, 2], ["a", "b"], 0, 3)
    assert "cut to its last 2 tokens" in p.cut_note(10, 12)
    assert generate.Prompt([1], ["a"], 0, 0).cut_note(1, 2) is None
