"""Every page that runs a language model renders with each shipped model (the real checkpoints in
checkpoints/, not tiny stand-ins): GPT-2 `tefviz-lm` and Llama `tefviz-llama`."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tefviz.checkpoints import checkpoints_root, list_checkpoints

from .conftest import REPO

LM_PAGES = ("text", "attention", "efficient_attention", "embeddings", "language_model", "generate")
EMBEDDED = ("tefviz-lm", "tefviz-llama")


def test_both_embedded_models_ship_usable():
    found = {c.name: c for c in list_checkpoints(checkpoints_root())}
    for name in EMBEDDED:
        assert found[name].usable, found[name].error
    assert found["tefviz-llama"].config["model_type"] == "llama"
    assert found["tefviz-llama"].config["max_position_embeddings"] >= 2048
    for variant in ("causal", "paper"):
        assert found[f"tefviz-llama-tef-{variant}"].usable


@pytest.mark.parametrize("model", EMBEDDED)
@pytest.mark.parametrize("page", LM_PAGES)
def test_page_renders_with_each_embedded_model(monkeypatch, page, model):
    monkeypatch.delenv("TEFVIZ_CHECKPOINTS", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.query_params["model"] = model
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key=f"{page}.model").value == model
    assert at.query_params.get("model") == model
    if page not in ("generate",):
        assert at.metric, "the page shows its numbers"
