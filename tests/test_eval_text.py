"""`eval text` on any text file and on the shipped samples of several domains: the table, the
per-window paired comparisons, clear errors for bad files, and the samples' metadata."""

from __future__ import annotations

import json
import math

import pytest

from tefviz.cli import main
from tefviz.data.heldout import SAMPLE_FILES, heldout_samples, heldout_text, list_samples, sample_text
from tefviz.errors import InputError
from tefviz.text.cli_eval import BASELINES, comparisons_markdown
from tefviz.text.evaluate import paired_ratio

LABELS = [f"{name} ({mode})" for name, mode in BASELINES]


@pytest.fixture()
def text_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text(heldout_text()[20000:26000], encoding="utf-8")
    return f


def test_eval_text_on_a_text_file_prints_dense_every_baseline_and_the_comparison(
    tiny_lm_dir, text_file, tmp_path, capsys
):
    out = tmp_path / "eval.json"
    rc = main(
        [
            "eval",
            "text",
            "--lm",
            str(tiny_lm_dir),
            "--text-file",
            str(text_file),
            "--windows",
            "2",
            "--block",
            "32",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "dense reference" in printed and "notes.txt" in printed
    for label in LABELS:
        assert label in printed
    assert "paired per-window comparison" in printed and "t=0.8: best baseline" in printed
    assert "t=0.5: best baseline" in printed
    table = json.loads(out.read_text())  # one text: its table, the format cards and the README use
    assert set(LABELS) <= set(table["scorers"]) and table["reference"]["windows"] == 2
    for t in ("0.8", "0.5"):
        comp = table["comparisons"][t]
        assert comp["best"] in LABELS and set(comp["methods"]) == set(LABELS)
        assert comp["methods"][comp["best"]]["ratio"] == 1.0
        for c in comp["methods"].values():
            assert c["ratio"] >= 1.0 - 1e-9  # the best baseline has the lowest perplexity
            assert c["low"] <= c["ratio"] <= c["high"] and c["windows"] == 2
    assert "(best baseline)" in comparisons_markdown(table)


def test_eval_text_with_a_causal_tef_on_a_file_and_a_sample(tiny_tef_root, text_file, tmp_path, capsys):
    """The acceptance command, with a shipped sample beside the file: one entry per text."""
    out = tmp_path / "eval.json"
    tef = tiny_tef_root / "tefviz-lm-tef-causal"
    rc = main(
        [
            "eval",
            "text",
            "--lm",
            str(tiny_tef_root / "tefviz-lm"),
            "--tef",
            str(tef),
            "--text-file",
            str(text_file),
            "--sample",
            "genesis",
            "--windows",
            "2",
            "--block",
            "32",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0 and "tefviz-lm-tef-causal" in printed
    report = json.loads(out.read_text())
    assert [t["name"] for t in report["texts"]] == ["genesis", "notes.txt"]
    assert report["texts"][0]["domain"] == "scripture"
    for table in report["texts"]:
        assert table["scorers"]["tefviz-lm-tef-causal"]["kind"] == "tef"
        for t in ("0.8", "0.5"):
            comp = table["comparisons"][t]
            assert comp["best"] != "tefviz-lm-tef-causal"  # the best *baseline*
            assert "tefviz-lm-tef-causal" in comp["methods"]


@pytest.mark.parametrize(
    "content, message", [(b"caf\xe9 au lait\n", "not UTF-8"), (b"", "is empty"), (b"  \n\n ", "is empty")]
)
def test_bad_text_files_give_clear_errors(tmp_path, capsys, content, message):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    rc = main(["eval", "text", "--lm", "not-loaded", "--text-file", str(f), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "bad.txt" in err and "Traceback" not in err


def test_missing_file_and_short_text_give_clear_errors(tiny_lm_dir, tmp_path, capsys):
    rc = main(["eval", "text", "--text-file", str(tmp_path / "nope.txt")])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("Just a few words.", encoding="utf-8")
    rc = main(
        [
            "eval",
            "text",
            "--lm",
            str(tiny_lm_dir),
            "--text-file",
            str(short),
            "--block",
            "32",
            "--out",
            str(tmp_path / "o.json"),
        ]
    )
    assert rc == 2 and "fewer than one window" in capsys.readouterr().err


def test_shipped_samples_load_with_their_metadata():
    from transformers import AutoTokenizer

    from tests.conftest import SHIPPED_LM

    samples = {s.name: s for s in list_samples()}
    assert list(samples) == list(SAMPLE_FILES)
    assert {s.domain for s in samples.values()} == {
        "prose",
        "scripture",
        "technical documentation",
        "dictionary",
    }
    tok = AutoTokenizer.from_pretrained(SHIPPED_LM)
    for s in samples.values():
        assert s.licence and s.source and s.split and s.path.exists() and s.parts >= 1
        text = sample_text(s.name)
        assert len(text) == s.characters
        if s.name != "austen":  # Austen's sample predates this (69 KB)
            assert 20_000 <= s.characters <= 40_000
        assert len(tok(text, add_special_tokens=False)["input_ids"]) >= 2048  # 4 x 512 and one 2,048
    assert heldout_text() == sample_text("austen") and heldout_samples()[0]["id"] == "Emma/016"
    assert "GPL-2+" in samples["debref"].licence and "public domain" in samples["genesis"].licence
    with pytest.raises(InputError, match="unknown held-out sample"):
        sample_text("nope")


def test_samples_are_outside_every_training_corpus():
    from tefviz.data.corpus import CORPORA, KJV_HELD_OUT_BOOKS, Document, _split

    assert "Ge" in KJV_HELD_OUT_BOOKS and all("debref" not in c for c in CORPORA.values())
    assert sample_text("genesis").startswith("Genesis 1\n\nIn the beginning")
    gcide = next(s for s in list_samples() if s.name == "gcide")
    for part in json.loads(gcide.path.read_text())["samples"]:
        doc_id = part["id"].removeprefix("gcide/")
        assert _split(Document("gcide", doc_id, part["text"])) == "test"


def test_paired_ratio_known_answer():
    c = paired_ratio([1.0, 2.0, 3.0], [1.1, 2.0, 2.9])  # log-ratios -0.1, 0, 0.1
    assert c["ratio"] == pytest.approx(1.0) and (c["wins"], c["losses"], c["windows"]) == (1, 1, 3)
    half = 4.303 * 0.1 / math.sqrt(3)
    assert c["low"] == pytest.approx(math.exp(-half), abs=1e-4)
    assert c["high"] == pytest.approx(math.exp(half), abs=1e-4)
    one = paired_ratio([2.0], [1.0])
    assert one["ratio"] == pytest.approx(math.e, abs=1e-4) and math.isnan(one["low"])


def test_write_cards_keeps_the_larger_austen_table(tiny_tef_root, tmp_path):
    """`--write-cards` updates every sample's table, but the card's Austen `heldout_table` (the
    README's Table 1) is replaced only by an evaluation of at least as many windows."""
    import shutil

    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_tef_root, root)
    tef = root / "tefviz-lm-tef-causal"
    card_path = tef / "card.json"
    args = [
        "eval",
        "text",
        "--lm",
        str(root / "tefviz-lm"),
        "--tef",
        str(tef),
        "--sample",
        "austen",
        "--sample",
        "genesis",
        "--windows",
        "2",
        "--block",
        "32",
        "--out",
        str(tmp_path / "e.json"),
        "--write-cards",
    ]
    for windows_before, kept in ((99, True), (1, False)):
        card = json.loads(card_path.read_text())
        card["metrics"]["heldout_table"] = {"reference": {"windows": windows_before}, "marker": True}
        card_path.write_text(json.dumps(card))
        assert main(args) == 0
        metrics = json.loads(card_path.read_text())["metrics"]
        assert ("marker" in metrics["heldout_table"]) == kept
        assert {"austen", "genesis"} <= set(metrics["heldout_tables"])
        assert metrics["heldout_tables"]["genesis"]["reference"]["windows"] == 2
