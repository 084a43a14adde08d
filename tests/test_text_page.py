"""AppTest of the Text page: scores, the live threshold, baselines, the URL, bad input."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import tefviz.text.view as view
from tefviz.data.heldout import heldout_samples

from .conftest import REPO, metrics, open_page, page_html, plotly_specs


def _page(**query) -> AppTest:
    return open_page("pages/text.py", 120, **query)


def _charts(at) -> int:
    return sum(1 for e in at.main if type(e).__name__ == "UnknownElement" and "plotly" in str(e.proto)[:200])


def test_text_page_scores_and_the_threshold_drops_tokens(tef_root, monkeypatch):
    calls = []
    real = view.score_text_tokens
    monkeypatch.setattr(view, "score_text_tokens", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _page()
    assert not at.exception
    assert at.selectbox(key="text.scorer").value == "tef:tefviz-lm-tef-causal"
    m1 = metrics(at)
    kept1 = int(m1["Tokens kept (last token's view)"].split(" of ")[0])
    assert "tefviz-strip" in page_html(at)
    at.slider(key="text.t").set_value(0.3).run()
    assert not at.exception
    m2 = metrics(at)
    kept2 = int(m2["Tokens kept (last token's view)"].split(" of ")[0])
    assert kept2 < kept1
    assert m2["Perplexity, all tokens"] == m1["Perplexity, all tokens"]
    assert m2["Perplexity, dropped at t"] != m1["Perplexity, dropped at t"]
    assert at.query_params["t"] == "0.3"  # the URL names are bare; the session key is text.t
    assert not [name for name in at.query_params if "." in name], at.query_params
    assert "line-through" in page_html(at)  # dropped tokens are struck through
    assert len(calls) == 1  # moving the threshold never re-ran the scoring pass


def test_text_page_at_t1_costs_nothing_for_causal_tef(tef_root):
    at = _page(t="1.0")
    m = metrics(at)
    # equal up to rounding: on a CPU with bf16 the masked loop and the plain forward round differently
    dropped, full = float(m["Perplexity, dropped at t"]), float(m["Perplexity, all tokens"])
    assert abs(dropped - full) <= 2e-3 * full
    assert m["Kept fraction"] == "100.0%"


def test_text_page_baselines_modes_and_layers(tef_root):
    at = _page(scorer="attention", mode="evict", t="0.5")
    assert not at.exception
    assert at.select_slider(key="text.layer").value == 0  # attention mass is per block
    evict = metrics(at)["Perplexity, dropped at t"]
    at.radio(key="text.mode").set_value("zero").run()
    assert not at.exception
    assert metrics(at)["Perplexity, dropped at t"] != evict
    assert at.query_params["mode"] == "zero"
    at.select_slider(key="text.layer").set_value(1).run()
    assert not at.exception and at.query_params["layer"] == "1"
    at.radio(key="text.mode").set_value("evict").run()
    seen = set()
    for scorer in (
        "uniform",
        "random",
        "leave_one_out",
        "streaming_llm",
        "h2o",
        "tova",
        "snapkv",
        "key_norm",
    ):
        at.selectbox(key="text.scorer").select(scorer).run()
        assert not at.exception, scorer
        assert not at.error, scorer
        assert metrics(at)["Tokens kept (last token's view)"]
        seen.add(metrics(at)["Perplexity, dropped at t"])
    assert len(seen) >= 4  # the baselines keep different keys


def test_text_page_paper_tef_runs_on_its_own_model(tef_root):
    at = _page(scorer="tef:tefviz-lm-tef-paper", t="0.9")
    assert not at.exception
    assert any("tefviz-lm-tef-paper" in c.value and "fine-tuned" in c.value for c in at.caption)


def test_text_page_held_out_chart_and_exports(tef_root):
    at = _page()
    assert any("Perplexity vs tokens kept" in s.value for s in at.subheader)
    labels = [e.proto.label for e in at.main if type(e).__name__ == "DownloadButton"]
    assert labels.count("CSV") >= 2 and labels.count("JSON") >= 2


def test_text_page_held_out_chart_compares_at_equal_kept_fractions(tef_root, tmp_path):
    """With `eval text --budget --write-cards` tables in the cards, the chart offers both comparisons:
    the budget one draws every method at the same kept fractions, and the link keeps the choice."""
    from tefviz.text.cli_eval import eval_text

    tef = tef_root / "tefviz-lm-tef-causal"
    eval_text(str(tef_root / "tefviz-lm"), [tef], tmp_path / "b.json", 2, 32, True, ["austen"], budget=True)
    assert json.loads((tef / "card.json").read_text())["metrics"]["heldout_budget_tables"]["austen"]
    at = _page()
    assert not at.exception
    radio = at.radio(key="text.compare")
    assert radio.value == "share" and radio.options == [
        view.HELDOUT_RULES["share"][1],
        view.HELDOUT_RULES["budget"][1],
    ]
    radio.set_value("budget").run()
    assert not at.exception and at.query_params["compare"] == "budget"
    assert any("equal cache sizes" in c.value for c in at.caption)
    specs = [json.loads(s) for s in plotly_specs(at)]
    spec = next(s for s in specs if "dense" in str(s["layout"].get("yaxis", {}).get("title")))
    xs = [tr["x"] for tr in spec["data"] if tr.get("mode") == "lines+markers"]
    assert len(xs) == 9 and len(xs[0]) == 5  # eight evict baselines and the TEF, five kept fractions
    for column in zip(*xs, strict=True):  # every method at the same kept fractions (H2O: +1 key early on)
        assert max(column) - min(column) < 0.05
    at = _page(compare="budget")
    assert at.radio(key="text.compare").value == "budget"


def test_text_page_opens_the_view_in_the_url_and_ignores_bad_values(tef_root):
    second = heldout_samples()[1]["id"]
    at = _page(scorer="random", sample=second, t="0.42", mode="skip")
    assert not at.exception
    assert at.selectbox(key="text.sample").value == second and at.slider(key="text.t").value == 0.42
    assert at.radio(key="text.mode").value == "skip"
    at = _page(scorer="<script>", t="7", mode="nope", layer="-3", sample="../x")
    assert not at.exception
    assert at.slider(key="text.t").value == 0.9 and at.selectbox(key="text.scorer").value.startswith("tef:")


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">'])
def test_text_page_renders_html_inert(tef_root, text):
    at = _page(sample="your own text")
    at.text_area(key="text.own").input(f"Hello {text} world").run()
    assert not at.exception
    html = page_html(at)
    assert "<script>" not in html and "<img" not in html and "&lt;" in html


def test_text_page_empty_one_token_unicode_and_long(tef_root):
    at = _page(sample="your own text")
    at.text_area(key="text.own").input("  \n ").run()
    assert not at.exception and any("empty" in i.value for i in at.info)
    at.text_area(key="text.own").input("a").run()
    assert not at.exception and any("One token" in i.value for i in at.info)
    at.text_area(key="text.own").input("Emoji 🙂👍🏽, 日本語, עברית, ‮RTL‬ ok.").run()
    assert not at.exception and metrics(at)["Perplexity, dropped at t"] != "n/a"
    at.text_area(key="text.own").input("The cat sat on the mat. " * 400).run()
    assert not at.exception and any("longer than one context window" in w.value for w in at.warning)


def test_text_page_reports_a_broken_tef_checkpoint(tef_root):
    (tef_root / "tefviz-lm-tef-causal" / "tef.safetensors").write_bytes(b"junk")
    at = _page(scorer="tef:tefviz-lm-tef-causal")
    assert not at.exception
    shown = [w.value.replace("\\", "") for w in at.warning]  # markdown escapes removed
    assert any("tefviz-lm-tef-causal" in w and "corrupt" in w for w in shown)
    assert at.selectbox(key="text.scorer").value == "tef:tefviz-lm-tef-paper"  # the usable one
    # the user's other choices survive; a baseline still works
    at.selectbox(key="text.scorer").select("uniform").run()
    assert not at.exception and metrics(at)["Tokens kept (last token's view)"]


def test_home_shows_tef_cards(tef_root):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not at.exception and not at.error
    variants = {m.value for m in at.metric if m.label == "Variant"}
    assert variants == {"causal", "paper"}
    assert any("python -m tefviz train tef --variant causal" in c.value for c in at.code)


# --- any model: the picker, TEF heads per model, the model's own context ----------------------


def _tef_options(at) -> list[str]:
    """The TEF checkpoints the scorer picker offers (its options are shown as 'label · name')."""
    return [o.split(" · ")[-1] for o in at.selectbox(key="text.scorer").options if " · " in o]


def test_text_page_picks_the_llama_and_its_tef_heads(llama_root):
    at = _page()
    assert not at.exception
    assert at.selectbox(key="text.model").options == [
        "tefviz-lm",
        "tefviz-llama",
    ]  # the embedded default first
    assert _tef_options(at) == ["tefviz-lm-tef-causal", "tefviz-lm-tef-paper"]
    at.selectbox(key="text.model").select("tefviz-llama").run()
    assert not at.exception and not at.error
    # the other model's TEF heads are no longer offered: the choice falls back to the first of its own
    assert _tef_options(at) == ["tefviz-llama-tef-causal", "tefviz-llama-tef-paper"]
    assert len(at.selectbox(key="text.scorer").options) == 2 + 9  # and the nine baselines
    assert at.selectbox(key="text.scorer").value == "tef:tefviz-llama-tef-causal"
    assert at.query_params["model"] == "tefviz-llama"
    assert at.query_params["scorer"] == "tef:tefviz-llama-tef-causal"
    kept1 = int(metrics(at)["Tokens kept (last token's view)"].split(" of ")[0])
    at.slider(key="text.t").set_value(0.3).run()
    assert not at.exception and not at.error
    kept2, n = map(int, metrics(at)["Tokens kept (last token's view)"].split(" of "))
    assert kept2 < kept1 and n == 128  # the sample fills the Llama's whole 128-token context
    assert any("longer than one context window of 128 tokens" in w.value for w in at.warning)
    assert at.query_params["t"] == "0.3" and at.query_params["model"] == "tefviz-llama"
    assert "line-through" in page_html(at)
    # the held-out table is the Llama TEF cards' own
    card = json.loads((llama_root / "tefviz-llama-tef-causal" / "card.json").read_text())
    ref = card["metrics"]["heldout_table"]["reference"]["perplexity"]
    assert any(f"Dense reference perplexity {ref:.2f}" in c.value for c in at.caption)
    # the paper variant runs on its own fine-tuned Llama
    at.selectbox(key="text.scorer").select("tef:tefviz-llama-tef-paper").run()
    assert not at.exception and not at.error
    assert any("tefviz-llama-tef-paper" in c.value and "fine-tuned" in c.value for c in at.caption)
    assert metrics(at)["Perplexity, dropped at t"] != "n/a"


def test_text_page_llama_from_a_link_baselines_and_a_bad_model(llama_root):
    at = _page(model="tefviz-llama", scorer="attention", mode="skip", t="0.5")
    assert not at.exception and not at.error
    assert (
        at.selectbox(key="text.model").value == "tefviz-llama" and at.radio(key="text.mode").value == "skip"
    )
    at.select_slider(key="text.layer").set_value(1).run()  # the tiny Llama has two blocks
    assert not at.exception and at.query_params["layer"] == "1"
    assert at.query_params["model"] == "tefviz-llama"
    # a link from before the picker names only a TEF: the page opens the model it runs on
    at = _page(scorer="tef:tefviz-llama-tef-paper")
    assert not at.exception and at.selectbox(key="text.model").value == "tefviz-llama"
    # an unknown model falls back to the default with the link notice
    at = _page(model="tefviz-mamba", scorer="uniform")
    assert not at.exception and at.selectbox(key="text.model").value == "tefviz-lm"
    assert any("model=tefviz-mamba (not one of the choices)" in i.value.replace("\\", "") for i in at.info)
    assert at.selectbox(key="text.scorer").value == "uniform"


@pytest.mark.parametrize("arch", ["gpt_neox"])
def test_text_page_other_architecture_with_baselines(zoo_root, arch):
    name = zoo_root(arch)
    at = _page(model=name)
    assert not at.exception and not at.error
    assert _tef_options(at) == [] and len(at.selectbox(key="text.scorer").options) == 9  # baselines only
    m = metrics(at)
    assert m["Perplexity, all tokens"] != "n/a" and m["Tokens kept (last token's view)"].endswith("of 128")
    at.selectbox(key="text.scorer").select("uniform").run()
    at.slider(key="text.t").set_value(0.5).run()
    assert not at.exception and not at.error
    assert at.query_params["model"] == name and at.query_params["scorer"] == "uniform"
    kept, n = map(int, metrics(at)["Tokens kept (last token's view)"].split(" of "))
    assert kept < n


def test_text_page_scores_a_whole_2048_token_context(zoo_root):
    name = zoo_root("llama", context=2048)  # the second embedded model's context, tiny otherwise
    at = _page(model=name, scorer="uniform", sample="your own text")
    at.text_area(key="text.own").input("The cat sat on the mat. " * 500).run()
    assert not at.exception and not at.error
    assert metrics(at)["Tokens kept (last token's view)"].endswith("of 2048")
    assert any("longer than one context window of 2048 tokens" in w.value for w in at.warning)
    strips = [e.proto.body for e in at.main if type(e).__name__ == "Html" and "tefviz-strip" in e.proto.body]
    assert strips and all(s.count('class="tok"') == 2048 for s in strips)  # every scored token is shown


def test_text_page_keeps_a_fixed_fraction_per_token(tef_root):
    """The keep rule: at a fixed kept fraction every method keeps the same number of keys, the slider
    says so, the link carries it, and the paper's TEF (which drops whole tokens) is not offered it."""
    at = _page(scorer="tova", t="0.5")
    assert not at.exception and at.radio(key="text.rule").value == "share"
    at.radio(key="text.rule").set_value("budget").run()
    assert not at.exception and not at.error and at.query_params["rule"] == "budget"
    assert at.slider(key="text.t").label.startswith("Kept fraction")
    kept, n = map(int, metrics(at)["Tokens kept (last token's view)"].split(" of "))
    assert kept == -(-n * 50 // 100)  # ceil(0.5 n) of the last token's n
    at.slider(key="text.t").set_value(0.3).run()
    kept = int(metrics(at)["Tokens kept (last token's view)"].split(" of ")[0])
    assert kept == -(-n * 30 // 100)
    at.selectbox(key="text.scorer").select("tef:tefviz-lm-tef-causal").run()  # the causal TEF too
    assert not at.exception and int(metrics(at)["Tokens kept (last token's view)"].split(" of ")[0]) == kept
    at.selectbox(key="text.scorer").select("tef:tefviz-lm-tef-paper").run()
    assert not at.exception and "text.rule" not in [r.key for r in at.radio]
    at.selectbox(key="text.scorer").select("attention").run()
    at.radio(key="text.mode").set_value("skip").run()  # whole tokens: no cache budget
    assert not at.exception and "text.rule" not in [r.key for r in at.radio]
