"""AppTest of the Embeddings page, and the perplexity harness behind it."""

from __future__ import annotations

import torch
from streamlit.testing.v1 import AppTest

from tefviz.embeddings.evaluate import evaluate_compression, pareto_sweep, windows_perplexity
from tefviz.models import load_causal_lm

from .conftest import REPO, metrics, open_page


def _page(**query) -> AppTest:
    return open_page("pages/embeddings.py", 180, **query)


def test_harness_uses_the_compressed_matrix_without_touching_the_model(tiny_lm_dir):
    lm = load_causal_lm(tiny_lm_dir, device=torch.device("cpu"), dtype=torch.float32)
    before = lm.model.transformer.wte.weight.clone()
    wins = [torch.randint(0, 300, (32,)) for _ in range(2)]
    dense = windows_perplexity(lm.model, wins)
    same = windows_perplexity(lm.model, wins, lm.model.transformer.wte.weight.detach())
    assert abs(dense - same) < 1e-3 * dense
    r8 = evaluate_compression(lm.model, wins, "quantised", {"bits": 8}, dense)
    r1 = evaluate_compression(lm.model, wins, "quantised", {"bits": 1}, dense)
    assert abs(r8.perplexity - dense) < abs(r1.perplexity - dense)
    assert r1.ratio > r8.ratio > 1.8  # 8 bits + an fp16 scale per row of 32
    assert torch.equal(lm.model.transformer.wte.weight, before)
    rows = pareto_sweep(lm.model, wins, {"low_rank": [{"rank": 4}, {"rank": 16}]})
    assert [r["knob_rank"] for r in rows] == [4, 16] and rows[0]["bytes"] < rows[1]["bytes"]


def test_embeddings_page_reacts_to_settings(checkpoints_root):
    at = _page(windows="1")
    assert not at.exception
    q8 = metrics(at)
    at.slider(key="embeddings.quantised_bits").set_value(2).run()
    assert not at.exception
    q2 = metrics(at)
    assert q2["Embedding bytes"] != q8["Embedding bytes"] and at.query_params["quantised_bits"] == "2"
    for method in ("tensor_train", "low_rank", "dynamic_bits", "lora_shared"):
        at.selectbox(key="embeddings.method").select(method).run()
        assert not at.exception, method
        assert metrics(at)["Held-out perplexity"]
    assert "tefviz-strip" in "".join(e.proto.body for e in at.main if type(e).__name__ == "Html")


def test_pareto_front_and_bad_url(checkpoints_root):
    at = _page(windows="1", method="low_rank", low_rank_rank="99999")
    assert not at.exception
    at.toggle(key="embeddings.pareto").set_value(True).run()
    assert not at.exception
    assert any("Pareto" in s.value or "Bytes vs perplexity" in s.value for s in at.subheader)
    labels = [e.proto.label for e in at.main if type(e).__name__ == "DownloadButton"]
    assert labels.count("CSV") >= 2


def test_model_pages_without_a_usable_lm(tmp_path, monkeypatch):
    monkeypatch.setenv("TEFVIZ_CHECKPOINTS", str(tmp_path / "empty"))
    for page in ("pages/embeddings.py", "pages/efficient_attention.py", "pages/text.py"):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.switch_page(page)
        at.run()
        assert not at.exception, page
        assert any("No usable language-model checkpoint" in w.value for w in at.warning), page


def test_embeddings_page_picks_the_llama(llama_root):
    at = _page(windows="1")
    assert at.selectbox(key="embeddings.model").options == ["tefviz-lm", "tefviz-llama"]
    gpt2 = metrics(at)
    at.selectbox(key="embeddings.model").select("tefviz-llama").run()
    assert not at.exception and not at.error
    llama = metrics(at)
    # the shipped tokenizer's 8,192 rows x 32 (the tiny GPT-2 has 320 rows)
    assert llama["Embedding bytes"] != gpt2["Embedding bytes"] and llama["Held-out perplexity"]
    at.slider(key="embeddings.quantised_bits").set_value(2).run()
    assert not at.exception and not at.error
    assert metrics(at)["Embedding bytes"] != llama["Embedding bytes"]
    assert at.query_params["model"] == "tefviz-llama" and at.query_params["quantised_bits"] == "2"
    at.selectbox(key="embeddings.method").select("low_rank").run()
    assert not at.exception and not at.error and metrics(at)["Held-out perplexity"]
    # the choice is kept for the next visit to the page, and a link opens it
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception and at.selectbox(key="embeddings.model").value == "tefviz-llama"
    at = _page(windows="1", model="tefviz-llama")
    assert not at.exception and at.selectbox(key="embeddings.model").value == "tefviz-llama"
