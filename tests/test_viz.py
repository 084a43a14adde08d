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
        bands = [
            c
            for (a, c), (b, _) in zip(heat.colorscale[::2], heat.colorscale[1::2], strict=True)
            if a <= at <= b
        ]
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

    html = generation_strip_html(
        ["<b>", " x"],
        ["<script>", "y", "z"],
        [5, 6],
        [7, 8, 9],
        shown=2,
        evicted_at={0: 0, 2: 1, 3: 5},
        diverged_at=1,
        kl=[0.0, 0.5, 0.1],
    )
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

    table = {
        "reference": {"perplexity": 100.0},
        "scorers": {
            "good (evict)": {
                "rows": [
                    {"t": 1.0, "kept_fraction": 1.0, "perplexity": 100.0},
                    {"t": 0.5, "kept_fraction": 0.5, "perplexity": 110.0},
                ]
            },
            "bad (skip)": {
                "rows": [
                    {"t": 1.0, "kept_fraction": 1.0, "perplexity": 100.0},
                    {"t": 0.5, "kept_fraction": 0.2, "perplexity": 1e6},
                ]
            },
        },
    }
    fig = perplexity_vs_kept_figure(table, "good (evict)", 0.5, (0.6, 1.2))
    lines = {tr.name: tr for tr in fig.data if tr.name}
    assert list(lines["good (evict)"].y) == [1.0, 1.1]
    assert "clipped: up to 10,000x" in next(n for n in lines if n.startswith("bad"))
    assert max(max(tr.y) for tr in fig.data) <= RATIO_CAP
    assert fig.layout.yaxis.type != "log" and fig.layout.yaxis.range[1] <= RATIO_CAP * 1.05


# --- one figure vocabulary: colours, template, snapshots ---------------------------------------
# CircuitsVis-style: each builder on a small fixed input, its JSON (data and layout, the template
# left out: it is checked once below; floats to 6 significant digits) against tests/snapshots/.
# A changed figure fails with a diff; TEFVIZ_UPDATE_SNAPSHOTS=1 rewrites the snapshots (review the
# diff of tests/snapshots/ before committing them).

import base64  # noqa: E402
import difflib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import plotly.io as pio  # noqa: E402
import pytest  # noqa: E402

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _plain(x):
    """JSON-ready and stable: arrays (plotly's base64 typed arrays too) to lists, floats rounded,
    NaN spelt out."""
    if isinstance(x, dict) and set(x) >= {"bdata", "dtype"}:
        values = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])
        shape = [int(n) for n in str(x.get("shape", len(values))).split(",")]
        return _plain(values.reshape(shape))
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return _plain(x.item())
    if isinstance(x, float):
        return "NaN" if math.isnan(x) else float(f"{x:.6g}")
    return x


def figure_json(fig) -> str:
    d = fig.to_plotly_json()
    layout = {k: v for k, v in d["layout"].items() if k != "template"}
    return (
        json.dumps(
            _plain({"data": d["data"], "layout": layout}), indent=1, sort_keys=True, ensure_ascii=False
        )
        + "\n"
    )


def assert_snapshot(name: str, text: str, update: bool | None = None) -> None:
    """Compare text with tests/snapshots/<name>; write it instead when TEFVIZ_UPDATE_SNAPSHOTS=1."""
    path = SNAPSHOTS / name
    if update if update is not None else os.environ.get("TEFVIZ_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}: run with TEFVIZ_UPDATE_SNAPSHOTS=1 to write it")
    want = path.read_text(encoding="utf-8")
    if text != want:
        diff = list(
            difflib.unified_diff(
                want.splitlines(), text.splitlines(), f"snapshots/{name}", "this build", lineterm="", n=2
            )
        )
        shown = "\n".join(diff[:80]) + (f"\n... {len(diff) - 80} more lines" if len(diff) > 80 else "")
        pytest.fail(
            f"{name} differs from its snapshot (TEFVIZ_UPDATE_SNAPSHOTS=1 rewrites it "
            f"if the change is meant):\n{shown}",
            pytrace=False,
        )


def _figures() -> dict:
    """name -> builder of one figure on a small fixed input, for every public figure builder."""
    from tefviz.viz import attention_figures as A
    from tefviz.viz import common as C
    from tefviz.viz import embedding_figures as E
    from tefviz.viz import generate_figures as G
    from tefviz.viz import image_figures as I
    from tefviz.viz import lm_figures as L
    from tefviz.viz import text_figures as T

    img = np.linspace(0, 1, 64).reshape(8, 8)
    keep = np.array([[True, False], [False, True]])
    scores = np.array([[0.4, 0.1], [0.2, 0.3]])
    shares = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    kept = shares >= 0.15
    mask = np.tril(np.ones((4, 4), dtype=bool))
    runs = [
        {"impl": i, "n": n, "median_s": n**e * 1e-6, "peak_mb_over_inputs": n * e / 10}
        for i, e in (("dense", 2.0), ("flex", 1.2))
        for n in (256, 1024)
    ]
    approx = [
        {"method": m, "size": s, "relative_error": 1 / s**e}
        for m, e in (("performer", 0.5), ("linformer", 0.8))
        for s in (8, 32)
    ]
    table = {
        "reference": {"perplexity": 30.0},
        "scorers": {
            "a": {
                "rows": [
                    {"t": 1.0, "kept_fraction": 1.0, "perplexity": 30.0},
                    {"t": 0.5, "kept_fraction": 0.5, "perplexity": 33.0},
                ]
            }
        },
    }
    pareto = [
        {"method": m, "bytes": b, "perplexity": p * o, "knob_bits": 3}
        for m, o in (("quant", 1.0), ("lowrank", 1.1))
        for b, p in ((1e5, 40.0), (1e6, 30.5))
    ]
    return {
        "common.cumulative_share": lambda: C.cumulative_share_figure(shares, kept, 0.8, labels=list("abcde")),
        "lm.surprisal": lambda: L.surprisal_figure(["a", "b", "c"], [math.nan, 2.0, 4.0], "title"),
        "lm.training_curve": lambda: L.training_curve_figure(
            [
                {"tokens_seen": 1e6, "valid_loss": 3.0, "train_loss": 3.1},
                {"tokens_seen": 2e6, "valid_loss": 2.5, "train_loss": 2.6},
            ]
        ),
        "text.cumulative_share": lambda: T.cumulative_share_figure(list("abcde"), shares, kept, 0.8),
        "text.loss_change": lambda: T.loss_change_figure(
            ["a", "b", "c"], [None, 0.5, -0.25], [True, False, True]
        ),
        "text.perplexity_vs_kept": lambda: T.perplexity_vs_kept_figure(table, "a", 0.5, (0.6, 1.05)),
        "images.image": lambda: I.image_figure(img, "input"),
        "images.image_signed": lambda: I.image_figure(img - 0.5, "difference", signed=True),
        "images.patch_overlay": lambda: I.patch_overlay_figure(img, keep, scores, 4, "overlay"),
        "images.score_heatmap": lambda: I.score_heatmap_figure(scores, keep, "norm", "scores"),
        "images.cumulative": lambda: I.cumulative_figure(shares, kept, 0.8, "shares"),
        "images.spectrum": lambda: I.spectrum_figure(img, 4, "spectrum"),
        "images.energy_curve": lambda: I.energy_curve_figure([2, 4, 8], [0.5, 0.8, 1.0], 4, "energy"),
        "images.explained_variance": lambda: I.explained_variance_figure(np.array([0.5, 0.3, 0.2]), 2, "ev"),
        "images.probabilities": lambda: I.probabilities_figure(
            ["x", "y"], np.array([0.7, 0.3]), np.array([0.6, 0.4]), "now", 0
        ),
        "images.accuracy_tokens": lambda: I.accuracy_tokens_figure(
            {"patch": [(65.0, 0.85, "all"), (33.0, 0.8, "t=0.9")], "svd": [(20.0, 0.82, "k=20")]},
            {"patch": (33.0, 0.8)},
        ),
        "attention.mask": lambda: A.mask_heatmap(mask, list("abcd"), path=(3, 1, 0)),
        "attention.density": lambda: A.density_heatmap(np.array([[1.0, 0.0], [0.5, 1.0]]), 8),
        "attention.block_table": lambda: A.block_table_figure(np.array([[2, 0], [1, 2]]), 4, 7),
        "attention.receptive_field": lambda: A.receptive_field_figure([2.0, 4.0], 8, [4.0, 8.0]),
        "attention.pair": lambda: A.attention_pair_figure(mask / 2.0, mask * 1.0, list("abcd")),
        "attention.bench": lambda: A.bench_figure({"runs": runs}, slopes={"dense": 2.0}),
        "attention.bench_empty": lambda: A.bench_figure({"runs": []}),
        "attention.error_vs_size": lambda: A.error_vs_size_figure(approx),
        "attention.signal": lambda: A.signal_figure(
            np.array([0.0, 0.5, 1.0]), np.array([1.0, -1.0, 0.5]), np.array([0.0, 1.0]), np.array([0.0, 1.0])
        ),
        "embeddings.pareto": lambda: E.pareto_figure(pareto, 4_000_000, 30.0, (100_000, 40.0)),
        "embeddings.row_error": lambda: E.row_error_figure(np.array([0.1, 0.2, 0.05])),
        "generate.cache_size": lambda: G.cache_size_figure(
            [2048, 2048], [2048, 3072], [4, 4], [4, 6], diverged_at=1
        ),
        "generate.kl": lambda: G.kl_figure([0.0, 0.2, math.nan], ["a", "b", "<c>"], diverged_at=1),
    }


@pytest.mark.parametrize("name", sorted(_figures()))
def test_figure_matches_its_snapshot_and_uses_the_template(name):
    fig = _figures()[name]()
    assert fig.layout.template.to_plotly_json() == pio.templates["tefviz"].to_plotly_json()
    assert fig.layout.height and fig.layout.margin.l is not None  # pinned: Streamlit reads them
    assert_snapshot(f"{name}.json", figure_json(fig))


def test_token_strips_match_their_snapshots():
    from tefviz.viz.generate_figures import generation_strip_html

    assert_snapshot(
        "tokens.strip.html",
        token_strip_html(
            ["a", "<b>", "\n"], [0.0, 1.0, math.nan], ["x", "y", "z"], dimmed=[False, True, False]
        ),
    )
    assert_snapshot(
        "generate.strip.html",
        generation_strip_html(["p"], ["g", "h"], [1], [2, 3], shown=2, evicted_at={0: 0}, diverged_at=1),
    )


def test_a_changed_figure_fails_its_snapshot_with_a_diff():
    fig = _figures()["text.cumulative_share"]()
    fig.update_layout(height=999)
    diff = r'(?s)differs from its snapshot.*-  "height": 300.*\+  "height": 999'
    with pytest.raises(pytest.fail.Exception, match=diff):
        assert_snapshot("text.cumulative_share.json", figure_json(fig), update=False)
    with pytest.raises(pytest.fail.Exception, match="no snapshot"):
        assert_snapshot("no-such-figure.json", "{}", update=False)


def test_kept_and_dropped_are_one_colour_on_every_page():
    from tefviz.viz import common, generate_figures, image_figures, text_figures

    shares, kept = np.array([0.6, 0.3, 0.1]), np.array([True, True, False])
    for fig in (
        text_figures.cumulative_share_figure(list("abc"), shares, kept, 0.8),
        image_figures.cumulative_figure(shares, kept, 0.8),
        image_figures.explained_variance_figure(shares, 2),
    ):
        bars = {tr.name: tr.marker.color for tr in fig.data if tr.type == "bar"}
        assert bars == {"kept": common.KEPT, "dropped": common.DROPPED}
    overlay = image_figures.patch_overlay_figure(np.zeros((4, 4)), np.array([[True, False]] * 2), None, 2)
    assert {s.fillcolor for s in overlay.layout.shapes if s.fillcolor} == {common.DROPPED}
    assert {s.line.color for s in overlay.layout.shapes if not s.fillcolor} == {common.KEPT}
    assert generate_figures.EVICTED == common.DROPPED
    assert image_figures.KEPT == common.KEPT and image_figures.DROPPED == common.DROPPED


def test_the_embeddings_goal_is_one_constant():
    from tefviz.viz.embedding_figures import EMBEDDINGS_GOAL

    assert str(EMBEDDINGS_GOAL) == "at least 4x fewer bytes with perplexity within 5 % of dense"
    assert EMBEDDINGS_GOAL.met(4.0, 1.05) and not EMBEDDINGS_GOAL.met(3.9, 1.0)
    assert not EMBEDDINGS_GOAL.met(8.0, 1.06)
    page = (Path(__file__).parents[1] / "pages" / "embeddings.py").read_text()
    assert "1.05" not in page and ">= 4" not in page


def test_viz_imports_neither_torch_nor_tefviz_core():
    code = (
        "import sys, pkgutil, importlib, tefviz.viz as v\n"
        "[importlib.import_module('tefviz.viz.' + m.name) for m in pkgutil.iter_modules(v.__path__)]\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'streamlit', 'transformers')\n"
        "       or (m.startswith('tefviz.') and not m.startswith('tefviz.viz'))]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
