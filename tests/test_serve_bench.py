"""`python -m tefviz bench serve`: the load test runs end to end against a real app server on the tiny
test checkpoints, drives Streamlit's websocket protocol correctly (the moves reach the page), and
never targets another machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tefviz.cli import main
from tefviz.errors import InputError
from tefviz.serve_bench import _ws_target, app_server, check_local_url, user_key, widget_state


@pytest.mark.slow
def test_serve_bench_end_to_end(tef_root, image_root, tmp_path, capsys):
    out = tmp_path / "bench_serve.json"
    code = main(
        [
            "bench",
            "serve",
            "--checkpoints",
            str(tef_root),
            "--text-sessions",
            "2",
            "--images-sessions",
            "1",
            "--moves",
            "2",
            "--move-timeout",
            "60",
            "--max-seconds",
            "80",
            "--out",
            str(out),
        ]
    )
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
    # the new numbers are on screen before (or when) the run ends
    assert all(0 < m["shown_s"] <= m["seconds"] for s in sessions for m in s["moves"])
    assert "shown p95" in printed
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


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:8501",
        "http://10.0.0.5:8501",
        "https://127.0.0.1.nip.io",
        "http://[2001:db8::1]:8501",
        "ws://localhost.evil:80",
    ],
)
def test_serve_bench_refuses_non_local_url(url, capsys):
    assert main(["bench", "serve", "--url", url]) == 2
    assert "only targets a server on this machine" in capsys.readouterr().err


def test_local_urls_accepted():
    assert check_local_url("127.0.0.1:8501") == "http://127.0.0.1:8501"
    assert check_local_url("http://localhost:8501/") == "http://localhost:8501"
    assert check_local_url("http://[::1]:8501") == "http://[::1]:8501"
    # the socket goes to ::1, the Host header names 127.0.0.1 (server.allowedHosts)
    assert _ws_target("http://[::1]:8501") == (
        "ws://127.0.0.1:8501/_stcore/stream",
        {"host": "::1", "port": 8501},
    )
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


@pytest.mark.slow
def test_two_replicas_behind_haproxy(tef_root, image_root, tmp_path):
    """The recipe for classes beyond one server: scripts/replicas.sh starts 2 replicas behind
    Debian's HAProxy; the load test drives sessions through the proxy, which spreads them."""
    import os
    import shutil
    import signal
    import subprocess
    import time
    import urllib.request

    from tests.conftest import REPO

    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        if os.environ.get("TEFVIZ_REQUIRE_BROWSER") == "1":  # CI installs it with chromium
            raise RuntimeError("haproxy is not installed")
        pytest.skip("Debian haproxy not installed")
    proc = subprocess.Popen(
        ["scripts/replicas.sh", "2", "8680"],
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, "TEFVIZ_CHECKPOINTS": str(tef_root), "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen("http://127.0.0.1:8680/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        out = tmp_path / "replicas.json"
        assert (
            main(
                [
                    "bench",
                    "serve",
                    "--url",
                    "http://127.0.0.1:8680",
                    "--text-sessions",
                    "3",
                    "--images-sessions",
                    "1",
                    "--moves",
                    "2",
                    "--max-seconds",
                    "120",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        results = json.loads(out.read_text())
        for page in ("text", "images"):
            assert results["pages"][page]["errors"] == 0
            assert results["pages"][page]["moves_completed"] == results["pages"][page]["moves_planned"]
        # both replicas served sessions (round-robin over websocket connections): HAProxy's counts
        stats = urllib.request.urlopen("http://127.0.0.1:8780/;csv", timeout=5).read().decode()
        header = stats.splitlines()[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in stats.splitlines()[1:]]
        served = {
            r["svname"]: int(r["stot"])
            for r in rows
            if r.get("pxname") == "replicas" and r["svname"] in ("r0", "r1")
        }
        assert served.keys() == {"r0", "r1"} and min(served.values()) >= 2, served
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_rss_counts_the_processes_under_the_server():
    """The Images page's worker is a child of the server: its memory is the app's memory too."""
    from tefviz.serve_bench import rss_mb, tree_rss_mb

    hold = 'x = b"x" * (200 * 2**20); import time; time.sleep(30)'  # written, so resident
    child = subprocess.Popen([sys.executable, "-c", hold])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (rss_mb(child.pid) or 0) < 200:
            time.sleep(0.1)
        own = rss_mb(os.getpid())
        assert tree_rss_mb(os.getpid()) >= own + 190
    finally:
        child.kill()
        child.wait()
