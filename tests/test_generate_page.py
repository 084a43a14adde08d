"""AppTest of the Generation page: a prompt continued with an evicted KV cache beside dense generation."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

import tefviz.generate.evicted as core

from .conftest import metrics, open_page, page_html, plotly_specs


def _page(**query) -> AppTest:
    return open_page("pages/generate.py", 120, **query)


def _generate(at) -> AppTest:
    at.button(key="generate.generate").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def _counting(monkeypatch) -> list:
    calls = []
    real = core.generate_evicted
    monkeypatch.setattr(core, "generate_evicted", lambda *a, **k: calls.append(k) or real(*a, **k))
    return calls


def test_generate_on_the_llama_policies_budget_and_no_regeneration(llama_root, monkeypatch):
    calls = _counting(monkeypatch)
    at = _page(model="tefviz-llama")
    assert not at.exception and not at.error
    # the causal TEF of the chosen model is offered (first), beside the four baselines
    assert at.selectbox(key="generate.policy").options[0] == "causal TEF · tefviz-llama-tef-causal"
    assert len(at.selectbox(key="generate.policy").options) == 5
    assert not at.metric and any("Press **Generate**" in i.value for i in at.info)  # nothing runs unasked
    at.selectbox(key="generate.policy").select("streaming_llm").run()
    at.slider(key="generate.budget").set_value(12).run()
    at.slider(key="generate.new_tokens").set_value(24).run()
    _generate(at)
    m = metrics(at)
    assert m["Tokens generated"] == "24"
    assert m["Final cache vs dense"].endswith("x smaller") and float(m["Final cache vs dense"][:-9]) > 1
    assert m["Mean KL(dense ‖ evicted)"].endswith("nats")
    assert m["Diverges at step"] == "never" or m["Diverges at step"].endswith("of 24")
    charts = plotly_specs(at)
    assert len(charts) == 2 and "KV cache (KB" in charts[0] and "KL(dense" in charts[1]
    html = page_html(at)
    assert "line-through" in html and "generated at step 24" in html
    assert len(calls) == 1 and calls[0]["budget"] == 12 and calls[0]["max_new_tokens"] == 24
    assert at.query_params["policy"] == "streaming_llm" and at.query_params["budget"] == "12"
    assert at.query_params["new_tokens"] == "24" and at.query_params["model"] == "tefviz-llama"
    # view widgets and plain reruns never generate again
    at.selectbox(key="generate.cache_layer").select(-1).run()
    assert not at.exception and at.query_params["cache_layer"] == "-1"
    at.slider(key="generate.step").set_value(5).run()
    assert not at.exception and "generated at step 6" not in page_html(at)
    at.run()
    assert len(calls) == 1
    # another policy: nothing until the button, then other numbers
    at.selectbox(key="generate.policy").select("tef:tefviz-llama-tef-causal").run()
    assert not at.metric
    _generate(at)
    assert len(calls) == 2 and calls[1]["heads"] is not None
    tef = metrics(at)
    assert tef["Tokens generated"] == "24" and tef != m and plotly_specs(at) != charts
    # back to StreamingLLM: the kept result, no new run
    at.selectbox(key="generate.policy").select("streaming_llm").run()
    assert metrics(at) == m and len(calls) == 2


def test_generate_keep_share_sampling_and_the_url(llama_root):
    at = _page(
        model="tefviz-llama",
        policy="h2o",
        limit="share",
        share="0.5",
        new_tokens="16",
        decoding="sampled",
        seed="7",
    )
    assert not at.exception and not at.error
    assert (
        at.selectbox(key="generate.policy").value == "h2o" and at.radio(key="generate.limit").value == "share"
    )
    assert at.slider(key="generate.share").value == 0.5 and at.number_input(key="generate.seed").value == 7
    _generate(at)
    assert metrics(at)["Tokens generated"] == "16"
    assert at.query_params["seed"] == "7" and at.query_params["share"] == "0.5"
    at.number_input(key="generate.seed").set_value(8).run()
    assert not at.metric  # a new seed is a new run: press again
    _generate(at)
    assert metrics(at)["Tokens generated"] == "16" and at.query_params["seed"] == "8"
    # another page and back: the choices are kept and the result comes back without a press
    at.switch_page("pages/language_model.py").run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception and at.number_input(key="generate.seed").value == 8
    assert at.selectbox(key="generate.policy").value == "h2o" and at.slider(key="generate.share").value == 0.5
    assert metrics(at)["Tokens generated"] == "16"
    # bad link values fall back with the notice
    at = _page(policy="<script>", budget="3", new_tokens="9999", limit="x", cache_layer="7")
    assert not at.exception
    assert any("Not used from the link" in i.value for i in at.info)
    assert at.slider(key="generate.budget").value == 32 and at.selectbox(
        key="generate.policy"
    ).value.startswith("tef:")


def test_generate_on_the_tiny_gpt2_default(tef_root):
    at = _page()
    assert not at.exception and not at.error
    assert at.selectbox(key="generate.model").value == "tefviz-lm"
    assert at.slider(key="generate.new_tokens").value == 32  # half of the tiny model's 64-token context
    at.selectbox(key="generate.policy").select("key_norm").run()
    _generate(at)
    assert metrics(at)["Tokens generated"] == "32"
    # the sample prompt is longer than the 32 tokens left: cut with a notice
    assert any("cut to its last 32 tokens" in w.value for w in at.warning)
    assert len(plotly_specs(at)) == 2


def test_generate_empty_html_and_unicode_prompts(tef_root):
    at = _page(prompt="your own text", policy="tova", new_tokens="8")  # room for a 56-token prompt
    at.text_area(key="generate.own").input("  \n ").run()
    assert not at.exception and any("empty" in i.value for i in at.info)
    assert not at.button  # no button without a prompt
    at.text_area(key="generate.own").input(
        '🙂 <script>alert(1)</script> <img src=x onerror="alert(2)">'
    ).run()
    _generate(at)
    html = page_html(at)
    assert "<script>" not in html and "<img" not in html and "&lt;" in html
    at.text_area(key="generate.own").input(
        "<b>日本語</b> 🙂 עברית"
    ).run()  # fits whole: every character shown
    _generate(at)
    html = page_html(at)
    assert "<b>" not in html and all(ch in html for ch in "日本語🙂עברית")
    at.text_area(key="generate.own").input("The cat sat on the mat. " * 50_000).run()  # 1.2 M characters
    assert not at.exception
    assert any("cut to its last" in w.value and "characters" in w.value for w in at.warning)


def test_feature_heads_are_offered_and_generate(tef_root, monkeypatch):
    """TEF heads with per-query features decode too: offered beside the others, run on Generate."""
    import json
    import shutil

    from tefviz.text.tef import TEFConfig, TEFHeads

    src, out = tef_root / "tefviz-lm-tef-causal", tef_root / "tefviz-lm-tef-causal-features"
    shutil.copytree(src, out)
    plain = TEFHeads.load(src).config
    features = ["attention", "accumulated", "age", "sharpness"]
    TEFHeads(
        TEFConfig("causal", plain.n_layer, plain.d_model, plain.base, [0.5, 1.0], features=features)
    ).save(out)
    card = json.loads((out / "card.json").read_text())
    (out / "card.json").write_text(json.dumps({**card, "name": out.name, "features": features}))
    calls = _counting(monkeypatch)
    at = _page(model="tefviz-lm", new_tokens="8")
    assert "causal TEF · tefviz-lm-tef-causal-features" in at.selectbox(key="generate.policy").options
    at.selectbox(key="generate.policy").select("tef:tefviz-lm-tef-causal-features").run()
    _generate(at)
    assert calls[-1]["heads"].config.features == features
    assert metrics(at)["Tokens generated"] == "8"
