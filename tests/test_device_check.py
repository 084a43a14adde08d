"""`python -m tefviz check device`: the one command a GPU session runs. Here on the CPU, on tiny
checkpoints: every page's core pipeline passes, a failing check is a FAIL row, the budget skips."""

from __future__ import annotations

import json

import torch

from tefviz.cli import main
from tefviz.device_check import Check, all_checks, check_device, exit_code, run_checks

PAGES = ["Language model:", "Text:", "Images:", "Attention patterns:", "Efficient attention:", "Embeddings:"]


def test_every_page_pipeline_passes_on_this_device(tef_root, tiny_image_root, tmp_path, capsys):
    import shutil

    for d in tiny_image_root.iterdir():
        shutil.copytree(d, tef_root / d.name)
    report = check_device(tmp_path / "check.json", only=PAGES, attention_lengths=[256])
    names = {(c["group"], c["name"]) for c in report["checks"]}
    assert ("Text", "tefviz-lm-tef-causal") in names and ("Text", "tefviz-lm-tef-paper") in names
    assert ("Images", "tefviz-image-svd-tef") in names
    assert ("Embeddings", "tefviz-lm every compressor") in names
    baselines = {n.split(" / ")[-1] for _, n in names}
    # every baseline under its own drop mode, and one under "skip" (that code path's check)
    assert {
        "uniform (evict)",
        "random (evict)",
        "attention (evict)",
        "leave_one_out (evict)",
        "streaming_llm (skip)",
    } <= baselines
    failed = [c for c in report["checks"] if c["status"] != "pass"]
    assert not failed, failed
    assert exit_code(report) == 0
    saved = json.loads((tmp_path / "check.json").read_text())
    assert saved["summary"].startswith(f"{len(report['checks'])} passed, 0 failed")
    out = capsys.readouterr().out
    assert "page / command" in out and "tefviz-lm-tef-causal" in out


def test_a_failing_check_is_a_row_and_the_budget_skips_the_rest():
    def broken() -> str:
        torch.nn.Linear(4, 1)(torch.ones(2, 4, device="meta"))
        return "unreachable"

    checks = [
        Check("Text", "broken", broken),
        Check("Text", "ok", lambda: "fine"),
        Check("Text", "late", lambda: "never"),
    ]
    outcomes = run_checks(checks, torch.device("cpu"), budget_s=0.0, progress=lambda _: None)
    assert outcomes[0].status == "skipped"  # a zero budget starts nothing
    outcomes = run_checks(checks[:2], torch.device("cpu"), budget_s=60, progress=lambda _: None)
    assert [o.status for o in outcomes] == ["FAIL", "pass"]
    assert "expected device meta" in outcomes[0].result
    assert exit_code({"checks": [o.__dict__ for o in outcomes]}) == 1


def test_lists_benchmarks_and_pages(tef_root):
    names = [f"{c.group}: {c.name}" for c in all_checks(torch.device("cpu"))]
    benches = {"bench: bench lm", "bench: bench text", "bench: bench attention", "bench: bench approx"}
    assert benches <= set(names)
    assert any(n.startswith("App page: ") for n in names)


def test_cli(tef_root, tmp_path, capsys):
    assert main(["check", "device", "--only", "Language model:", "--out", str(tmp_path / "c.json")]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
