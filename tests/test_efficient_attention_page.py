"""AppTest of the Efficient attention page, and the approximation benchmark CLI."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tefviz.attention.approx_bench import bench_approx, fitted_slopes
from tefviz.cli import main
from tefviz.errors import InputError

from .conftest import REPO


def _page(**query) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page("pages/efficient_attention.py")
    return at.run()


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_page_compares_each_method_and_reacts(checkpoints_root):
    at = _page(tokens="64")
    assert not at.exception
    first = _metrics(at)["Relative output error"]
    at.select_slider(key="size").set_value(8).run()
    assert not at.exception and _metrics(at)["Relative output error"] != first
    assert at.query_params["size"] == "8"
    for method in ("linformer", "infinity_former"):
        at.selectbox(key="method").select(method).run()
        assert not at.exception, method
        assert _metrics(at)["Mean row KL"]
    assert any("continuous memory" in s.value for s in at.subheader)


def test_causal_mode_refuses_non_causal_methods_clearly(checkpoints_root):
    at = _page(tokens="64", method="linformer", causal="true")
    assert not at.exception
    assert any("not causal" in e.value for e in at.error)
    at.selectbox(key="method").select("performer").run()
    assert not at.exception and _metrics(at)["Relative output error"]


def test_bad_url_values_fall_back(checkpoints_root):
    at = _page(method="<b>", size="-1", layer="99", tokens="3")
    assert not at.exception
    assert at.selectbox(key="method").value == "performer"


def test_benchmark_from_the_page(checkpoints_root):
    at = _page(tokens="32")
    at.multiselect(key="bench_lengths").set_value([512]).run()
    at.multiselect(key="bench_methods").set_value(["exact", "performer"]).run()
    next(b for b in at.button if "benchmark" in b.label).click().run()
    assert not at.exception
    assert any(c.value.startswith("On cpu") for c in at.caption)


def test_bench_approx_cli_and_slopes(tmp_path, capsys):
    out = tmp_path / "approx.json"
    assert main(["bench", "approx", "--lengths", "256", "512", "--method", "exact", "--method", "performer",
                 "--repeats", "1", "--out", str(out)]) == 0
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
