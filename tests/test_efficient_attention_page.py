"""AppTest of the Efficient attention page, and the approximation benchmark CLI."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tefviz.attention.approx_bench import bench_approx, fitted_slopes
from tefviz.cli import main
from tefviz.errors import InputError

from .conftest import metrics, open_page


def _page(**query) -> AppTest:
    return open_page("pages/efficient_attention.py", 180, **query)


def test_page_compares_each_method_and_reacts(checkpoints_root):
    at = _page(tokens="64")
    assert not at.exception
    first = metrics(at)["Relative output error"]
    at.select_slider(key="efficient_attention.size").set_value(8).run()
    assert not at.exception and metrics(at)["Relative output error"] != first
    assert at.query_params["size"] == "8"
    for method in ("linformer", "infinity_former"):
        at.selectbox(key="efficient_attention.method").select(method).run()
        assert not at.exception, method
        assert metrics(at)["Mean row KL"]
    assert any("continuous memory" in s.value for s in at.subheader)


def test_causal_mode_refuses_non_causal_methods_clearly(checkpoints_root):
    at = _page(tokens="64", method="linformer", causal="true")
    assert not at.exception
    assert any("not causal" in e.value for e in at.error)
    at.selectbox(key="efficient_attention.method").select("performer").run()
    assert not at.exception and metrics(at)["Relative output error"]


def test_bad_url_values_fall_back(checkpoints_root):
    at = _page(method="<b>", size="-1", layer="99", tokens="3")
    assert not at.exception
    assert at.selectbox(key="efficient_attention.method").value == "performer"


def test_benchmark_from_the_page(checkpoints_root):
    at = _page(tokens="32")
    at.multiselect(key="efficient_attention.bench_lengths").set_value([512]).run()
    at.multiselect(key="efficient_attention.bench_methods").set_value(["exact", "performer"]).run()
    next(b for b in at.button if "benchmark" in b.label).click().run()
    assert not at.exception
    assert any(c.value.startswith("On cpu") for c in at.caption)


def test_bench_approx_cli_and_slopes(tmp_path, capsys):
    out = tmp_path / "approx.json"
    assert (
        main(
            [
                "bench",
                "approx",
                "--lengths",
                "256",
                "512",
                "--method",
                "exact",
                "--method",
                "performer",
                "--repeats",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 4 and all("median_s" in r for r in data["runs"])
    assert "fitted slope" in capsys.readouterr().out
    runs = [{"method": "a", "n": n, "median_s": n**2 * 1e-9} for n in (1024, 2048, 4096)]
    runs += [{"method": "b", "n": n, "median_s": n * 1e-6} for n in (1024, 2048, 4096)]
    assert fitted_slopes(runs) == {"a": 2.0, "b": 1.0}
    with pytest.raises(InputError, match="not causal"):
        bench_approx([512], ("linformer",), causal=True)
    with pytest.raises(InputError, match="at least 256"):
        bench_approx([100])


def test_page_picks_the_llama_and_rebounds_layer_and_head(llama_root):
    at = _page(tokens="64")
    assert at.selectbox(key="efficient_attention.model").options == ["tefviz-lm", "tefviz-llama"]
    at.selectbox(key="efficient_attention.model").select("tefviz-llama").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="efficient_attention.head").options == [
        "0",
        "1",
        "2",
        "3",
    ]  # 4 query heads over 2 key/value heads
    assert at.select_slider(key="efficient_attention.tokens").options == [
        "32",
        "64",
        "128",
    ]  # up to its 128-token context
    first = metrics(at)["Relative output error"]
    at.selectbox(key="efficient_attention.head").select(3).run()
    at.selectbox(key="efficient_attention.layer").select(1).run()
    at.select_slider(key="efficient_attention.tokens").set_value(128).run()
    assert not at.exception and not at.error
    assert metrics(at)["Tokens"] == "128" and metrics(at)["Relative output error"] != first
    q = at.query_params
    assert (q["model"], q["head"], q["layer"]) == ("tefviz-llama", "3", "1")
    # back to the GPT-2 (2 heads, 64 tokens): choices it cannot take fall back, nothing crashes
    at.selectbox(key="efficient_attention.model").select("tefviz-lm").run()
    assert not at.exception and not at.error
    assert (
        at.selectbox(key="efficient_attention.head").value == 0
        and at.select_slider(key="efficient_attention.tokens").value == 64
    )
    assert at.query_params["model"] == "tefviz-lm" and at.query_params["head"] == "0"
    # a link to the Llama opens it; an unknown model falls back with the link notice
    at = _page(model="tefviz-llama", head="3", tokens="128")
    assert (
        not at.exception
        and at.selectbox(key="efficient_attention.head").value == 3
        and metrics(at)["Tokens"] == "128"
    )
    at = _page(model="nope", head="3")
    assert at.selectbox(key="efficient_attention.model").value == "tefviz-lm"
    assert any("model=nope (not one of the choices)" in i.value.replace("\\", "") for i in at.info)
