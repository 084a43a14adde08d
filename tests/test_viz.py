import math

from tefviz.viz.lm_figures import surprisal_figure, training_curve_figure
from tefviz.viz.tokens import colour, token_strip_html


def test_strip_escapes_script_and_attributes():
    pieces = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "ok"]
    html = token_strip_html(pieces, [1.0, 2.0, 3.0], ['" onmouseover="x', "<b>", "t"])
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert 'title="&quot; onmouseover=&quot;x"' in html


def test_colour_ramp_and_nan():
    assert colour(0.0, 10) == "rgb(255,255,255)"
    assert colour(10.0, 10) == colour(99.0, 10) == "rgb(215,48,39)"
    assert colour(math.nan, 10) == "rgb(238,238,238)"


def test_dimmed_tokens_are_struck_through():
    html = token_strip_html(["a", "b"], [1.0, 1.0], ["", ""], dimmed=[False, True])
    assert html.count("line-through") == 1


def test_surprisal_figure_has_running_mean():
    fig = surprisal_figure(["a", "b", "c"], [math.nan, 2.0, 4.0])
    bars, mean = fig.data
    assert list(bars.y) == [None, 2.0, 4.0]
    assert list(mean.y) == [None, 2.0, 3.0]


def test_training_curve_in_millions_of_tokens():
    fig = training_curve_figure([{"tokens_seen": 2_000_000, "valid_loss": 3.0, "train_loss": 3.1}])
    assert list(fig.data[0].x) == [2.0]


def test_block_table_figure_colours_states_and_hover():
    import numpy as np

    from tefviz.viz.attention_figures import BLOCK_COLOURS, BLOCK_STATES, block_table_figure

    table = np.array([[2, 0, 0], [1, 2, 0], [0, 1, 2]], dtype=np.int8)
    fig = block_table_figure(table, 128, 300)  # the last tile is 44 tokens
    (heat,) = fig.data
    assert np.asarray(heat.z).shape == (3, 3)
    assert list(heat.x) == list(heat.y) == [0, 128, 256, 300]  # tile edges in token positions
    # each state's value falls in a band of its own colour
    lo, hi = heat.zmin, heat.zmax
    for value, want in enumerate(BLOCK_COLOURS):
        at = (value - lo) / (hi - lo)
        bands = [c for (a, c), (b, _) in zip(heat.colorscale[::2], heat.colorscale[1::2], strict=True)
                 if a <= at <= b]
        assert bands == [want]
    assert list(heat.colorbar.ticktext) == list(BLOCK_STATES)
    assert list(heat.colorbar.tickvals) == [0, 1, 2]
    assert "customdata" in heat.hovertemplate
    cell = heat.customdata[2][1]
    assert cell[0] == "256–299" and cell[1] == "128–255" and cell[2].startswith("partial")
    assert heat.customdata[0][1][2].startswith("skipped") and heat.customdata[0][0][2].startswith("full")
    assert fig.layout.yaxis.autorange == "reversed"


# --- the Generation page's figures --------------------------------------------------------------

def test_generated_pieces_join_up_across_split_characters():
    from tefviz.viz.generate_figures import generated_pieces

    # a byte-level "tokenizer": each id is one UTF-8 byte, decoded with replacement characters
    def decode(ids):
        return bytes(ids).decode("utf-8", errors="replace")

    text = "a é 🙂!"
    ids = list(text.encode())
    pieces = generated_pieces(decode, list(b"ctx "), ids)
    assert "".join(pieces) == text and len(pieces) == len(ids)
    assert pieces[2:4] == ["", "é"] and pieces[5:9] == ["", "", "", "🙂"]  # the completing byte gets it
    assert generated_pieces(decode, [], []) == []
    # a byte that never completes a character is shown, not held back for ever
    broken = generated_pieces(decode, [], [0xE6, 0xE6, 0xE6, 0xE6, 0xE6, ord("x")])
    assert "".join(broken).endswith("x") and any(p for p in broken[:-1])


def test_eviction_steps_per_layer_and_every_layer():
    from tefviz.viz.generate_figures import eviction_steps

    evicted = [[[1], []], [[2], [1]], [[], [2, 3]]]  # steps x layers x positions
    assert eviction_steps(evicted, 0) == {1: 0, 2: 1}
    assert eviction_steps(evicted, 1) == {1: 1, 2: 2, 3: 2}
    assert eviction_steps(evicted, None) == {1: 1, 2: 2}  # 3 is still cached at layer 0
    assert eviction_steps([], None) == {}


def test_generation_strip_strikes_evicted_highlights_generated_and_escapes():
    from tefviz.viz.generate_figures import generation_strip_html

    html = generation_strip_html(["<b>", " x"], ["<script>", "y", "z"], [5, 6], [7, 8, 9], shown=2,
                                 evicted_at={0: 0, 2: 1, 3: 5}, diverged_at=1, kl=[0.0, 0.5, 0.1])
    assert "<script>" not in html and "<b>" not in html and "&lt;script&gt;" in html
    assert html.count('class="tok"') == 4  # the prompt and the first two generated tokens
    assert html.count("line-through") == 2  # evicted by step 2: position 0 and 2 (3 goes at step 6)
    assert "rgb(215,48,39)" in html and "first divergence" in html  # the divergence token, dark red
    assert "KL to dense 0.5000 nats" in html
    later = generation_strip_html(["a"], ["b"], [1], [2], shown=1, first_position=40)
    assert "#40 " in later and "#41 " in later and "line-through" not in later


def test_cache_size_and_kl_figures():
    import math

    from tefviz.viz.generate_figures import cache_size_figure, kl_figure

    fig = cache_size_figure([2048, 2048, 2048], [2048, 3072, 4096], [4, 4, 4], [4, 6, 8], diverged_at=1)
    dense, evicted = fig.data
    assert list(evicted.y) == [2.0, 2.0, 2.0] and list(dense.y) == [2.0, 3.0, 4.0]
    assert list(evicted.x) == [1, 2, 3] and list(dense.customdata) == [4, 6, 8]
    assert any("diverges at step 2" in (a.text or "") for a in fig.layout.annotations)
    fig = kl_figure([0.0, 0.2, math.nan, 0.4], ["a", "b", "c", "<d>"])
    assert list(fig.data[0].y) == [0.0, 0.2, None, 0.4]
    assert any("mean 0.200" in (a.text or "") for a in fig.layout.annotations)
    assert not any("diverges" in (a.text or "") for a in fig.layout.annotations)
    assert len(kl_figure([]).data) == 1  # nothing generated: an empty chart, no error


def test_perplexity_vs_kept_is_a_readable_ratio_with_runaway_lines_clipped():
    from tefviz.viz.text_figures import RATIO_CAP, perplexity_vs_kept_figure

    table = {"reference": {"perplexity": 100.0},
             "scorers": {"good (evict)": {"rows": [{"t": 1.0, "kept_fraction": 1.0, "perplexity": 100.0},
                                                   {"t": 0.5, "kept_fraction": 0.5, "perplexity": 110.0}]},
                         "bad (skip)": {"rows": [{"t": 1.0, "kept_fraction": 1.0, "perplexity": 100.0},
                                                 {"t": 0.5, "kept_fraction": 0.2, "perplexity": 1e6}]}}}
    fig = perplexity_vs_kept_figure(table, "good (evict)", 0.5, (0.6, 1.2))
    lines = {tr.name: tr for tr in fig.data if tr.name}
    assert list(lines["good (evict)"].y) == [1.0, 1.1]
    assert "clipped: up to 10,000x" in next(n for n in lines if n.startswith("bad"))
    assert max(max(tr.y) for tr in fig.data) <= RATIO_CAP
    assert fig.layout.yaxis.type != "log" and fig.layout.yaxis.range[1] <= RATIO_CAP * 1.05
