"""`python -m tefviz bench serve`: the load test runs end to end against a real app server on the tiny
test checkpoints, drives Streamlit's websocket protocol correctly (the moves reach the page), and
never targets another machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tefviz.cli import main
from tefviz.errors import InputError
from tefviz.serve_bench import _ws_target, app_server, check_local_url, user_key, widget_state


@pytest.mark.slow
def test_serve_bench_end_to_end(tef_root, image_root, tmp_path, capsys):
    out = tmp_path / "bench_serve.json"
    code = main(["bench", "serve", "--checkpoints", str(tef_root), "--text-sessions", "2",
                 "--images-sessions", "1", "--moves", "2", "--move-timeout", "60", "--max-seconds", "80",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads(out.read_text())
    assert {"benchmark", "device", "options", "server", "pages", "sessions", "wall_s"} <= results.keys()
    assert not results["stopped_early"]
    assert results["server"]["started_here"] and results["server"]["peak_rss_mb"] > 50
    for page, n in (("text", 2), ("images", 1)):
        summary = results["pages"][page]
        assert summary["errors"] == 0, (summary["error_messages"], results["server"].get("log_tail"))
        assert summary["sessions"] == n and summary["moves_completed"] == summary["moves_planned"] == 2 * n
        assert summary["move_s"]["p50"] > 0 and summary["first_run_s"]["p50"] > 0
        assert page in printed
    assert "peak RSS" in printed

    sessions = results["sessions"]
    assert all(m["seconds"] > 0 for s in sessions for m in s["moves"])
    # the moves reached the page: what it computed at the class's values differs from the first run's
    for s in sessions:
        assert [m["value"] for m in s["moves"]] == ([0.8, 0.7] if s["page"] == "text" else [0.7, 0.6])
    text = next(s for s in sessions if s["page"] == "text")
    for metric in ("Perplexity, dropped at t", "Kept fraction"):
        assert text["first_metrics"][metric] != text["moves"][-1]["metrics"][metric], metric
    images = next(s for s in sessions if s["page"] == "images")
    kept = "Tokens kept (CLS included)"
    assert images["first_metrics"][kept] != images["moves"][-1]["metrics"][kept]


@pytest.mark.slow
def test_server_stopped_when_the_run_fails(tmp_path):
    with pytest.raises(RuntimeError), app_server(tmp_path) as server:
        pid = server.pid
        raise RuntimeError("the load test broke")
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("url", ["http://example.com:8501", "http://10.0.0.5:8501", "https://127.0.0.1.nip.io",
                                 "http://[2001:db8::1]:8501", "ws://localhost.evil:80"])
def test_serve_bench_refuses_non_local_url(url, capsys):
    assert main(["bench", "serve", "--url", url]) == 2
    assert "only targets a server on this machine" in capsys.readouterr().err


def test_local_urls_accepted():
    assert check_local_url("127.0.0.1:8501") == "http://127.0.0.1:8501"
    assert check_local_url("http://localhost:8501/") == "http://localhost:8501"
    assert check_local_url("http://[::1]:8501") == "http://[::1]:8501"
    # the socket goes to ::1, the Host header names 127.0.0.1 (server.allowedHosts)
    assert _ws_target("http://[::1]:8501") == ("ws://127.0.0.1:8501/_stcore/stream",
                                               {"host": "::1", "port": 8501})
    with pytest.raises(InputError):
        check_local_url("ftp://127.0.0.1:21")


def test_widget_states_as_the_frontend_sends_them():
    from streamlit.proto.Element_pb2 import Element

    assert user_key("$$ID-0123abcd-tokens-export-csv") == "tokens-export-csv"
    assert user_key("plain") is None
    el = Element()
    el.slider.id, el.slider.default[:] = "$$ID-h-t", [0.0]
    assert list(widget_state("slider", el.slider).double_array_value.data) == [0.0]
    el.slider.value[:], el.slider.set_value = [0.9], True  # the script's value wins
    assert list(widget_state("slider", el.slider).double_array_value.data) == [0.9]
    el.selectbox.id, el.selectbox.options[:], el.selectbox.default = "$$ID-h-sample", ["a", "b"], 1
    assert widget_state("selectbox", el.selectbox).string_value == "b"
    el.button.id = "$$ID-h-go"
    assert widget_state("button", el.button) is None  # triggers are only sent when clicked
