import math

from tefviz.viz.figures import surprisal_figure, training_curve_figure
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
