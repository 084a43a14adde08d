"""AppTest of the Attention patterns page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from .conftest import metrics, open_page


def _page(**query) -> AppTest:
    return open_page("pages/attention.py", 180, **query)


def _charts(at) -> int:
    return sum(1 for e in at.main if type(e).__name__ == "UnknownElement")


def _pair(at) -> str:
    """The dense-vs-patterned attention figure of the model section."""
    return next(
        str(e.proto) for e in at.main if type(e).__name__ == "UnknownElement" and "pair" in str(e.proto)
    )


def test_attention_page_default_view_and_widgets(checkpoints_root):
    at = _page()
    assert not at.exception
    m = metrics(at)
    assert m["Active cells"] and m["Perplexity, dense"] and m["Perplexity, patterned"]
    before = m["Active cells"]
    at.number_input(key="attention.a_sliding_window").set_value(16).run()
    assert not at.exception and metrics(at)["Active cells"] != before
    assert at.query_params["a_sliding_window"] == "16"
    at.selectbox(key="attention.pattern").select("dilated").run()
    assert not at.exception and at.query_params["pattern"] == "dilated"


def test_lecture_examples_are_one_click_away(checkpoints_root):
    at = _page()
    at.button[1].click().run()  # cat -> GLB -> sad
    assert not at.exception
    assert any(
        "2 hop" in s.value and "cat" in s.value and "GLB" in s.value and "sad" in s.value for s in at.success
    )
    at.button[0].click().run()  # window 4: about 5n cells
    assert not at.exception
    assert metrics(at)["Active cells"] == f"{5 * 1024 - 6:,}"


def test_long_sequences_use_a_density_image_and_skip_flow(checkpoints_root):
    at = _page(n="16384", a_sliding_window="256")
    assert not at.exception
    assert any("never sent to the browser" in c.value for c in at.caption)
    assert any("Information flow is computed up to" in i.value for i in at.info)


def test_bad_parameters_give_clear_messages(checkpoints_root):
    at = _page(pattern="dilated", n="16", a_dilated_window="16")  # blockwise now takes any block
    assert not at.exception
    assert any("reaches past the sequence" in e.value for e in at.error)
    at = _page(pattern="nope", n="7", a_sliding_window="-3", source="99")
    assert not at.exception and at.selectbox(key="attention.pattern").value == "sliding"


def test_combination_and_or(checkpoints_root):
    at = _page(n="64")
    alone = metrics(at)["Active cells"]
    at.selectbox(key="attention.combine").select("global").run()
    assert not at.exception
    union = metrics(at)["Active cells"]
    at.radio(key="attention.how").set_value("and").run()
    inter = metrics(at)["Active cells"]
    as_int = lambda s: int(s.replace(",", ""))  # noqa: E731
    assert as_int(inter) <= as_int(alone) <= as_int(union)


def test_benchmark_runs_from_the_page(checkpoints_root):
    at = _page(n="64")
    at.multiselect(key="attention.bench_lengths").set_value([512]).run()
    at.multiselect(key="attention.bench_impls").set_value(["dense_causal", "block_gather"]).run()
    next(b for b in at.button if "benchmark" in b.label).click().run()
    assert not at.exception
    assert any("on cpu" in c.value for c in at.caption)


def test_flex_tiles_only_when_asked(checkpoints_root, monkeypatch):
    """The BlockMask is built only once the toggle is on; toggle and tile side go into the URL."""
    import tefviz.attention.block_masks as block_masks

    built = []
    real = block_masks.build_block_mask
    monkeypatch.setattr(block_masks, "build_block_mask", lambda *a, **k: built.append(a[1:]) or real(*a, **k))
    at = _page(n="512", pattern="sliding", a_sliding_window="64", a_sliding_causal="1")
    assert not at.exception
    assert not any(label.startswith("Tiles computed") for label in metrics(at)) and not built
    charts = _charts(at)
    at.toggle(key="attention.flex_show").set_value(True).run()
    assert not at.exception
    m = metrics(at)
    assert m["Tiles computed, of 16"] == "7"  # 512 / 128 = 4 tiles a side: the diagonal and one below
    assert m["Full tiles"] == "0" and m["Partial tiles"] == "7" and m["Share of dense work"] == "43.8%"
    assert _charts(at) == charts + 1
    assert at.query_params["flex_show"] == "True" and at.query_params["flex_block"] == "128"
    at.select_slider(key="attention.flex_block").set_value(32).run()
    assert not at.exception
    m = metrics(at)
    assert "Tiles computed, of 256" in m and int(m["Full tiles"]) > 0
    assert at.query_params["flex_block"] == "32"
    assert any("tiles of 32x32" in c.value for c in at.caption)


def test_pattern_on_the_llama_and_rebounded_head(llama_root):
    at = _page(n="64")
    assert at.selectbox(key="attention.model").options == ["tefviz-lm", "tefviz-llama"]
    at.selectbox(key="attention.model").select("tefviz-llama").run()
    assert not at.exception and not at.error
    m = metrics(at)
    assert m["Perplexity, dense"] and m["Perplexity, patterned"] and m["Tokens"] == "128"  # its context
    assert at.selectbox(key="attention.head").options == ["0", "1", "2", "3"]
    at.selectbox(key="attention.head").select(3).run()
    at.selectbox(key="attention.show_layer").select(1).run()
    before = _pair(at)
    at.number_input(key="attention.a_sliding_window").set_value(16).run()  # the default is 4
    assert not at.exception and not at.error
    # a random Llama predicts almost uniformly, so its perplexity hardly moves; its attention does
    assert _pair(at) != before and metrics(at)["Active cells"] != m["Active cells"]
    q = at.query_params
    assert (q["model"], q["head"], q["show_layer"], q["a_sliding_window"]) == ("tefviz-llama", "3", "1", "16")
    # the tiny GPT-2 has 2 heads: head 3 falls back to 0 instead of failing
    at.selectbox(key="attention.model").select("tefviz-lm").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="attention.head").value == 0 and metrics(at)["Tokens"] == "64"
    at = _page(model="gpt-17", head="1")
    assert not at.exception and at.selectbox(key="attention.model").value == "tefviz-lm"
    assert any("model=gpt-17 (not one of the choices)" in i.value.replace("\\", "") for i in at.info)
