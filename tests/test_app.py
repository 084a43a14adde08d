"""AppTest: every page renders, reacts to its widgets, keeps its state in the URL, and
shows clear messages (never an exception) for bad input."""

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from tefviz.data.heldout import heldout_samples
from ui.export import export_payloads
from ui.registry import PAGES

from .conftest import app_test, metrics, page_html


def _app(**query) -> AppTest:
    return app_test(120, **query)


def _elements(at, kind: str) -> list:
    """Every element of a type (by class name, e.g. 'DownloadButton'), nested ones included."""
    return [e for e in at.main if type(e).__name__ == kind]


# --- home -------------------------------------------------------------------------------


def test_home_shows_device_checkpoint_card_and_links(checkpoints_root):
    at = _app().run()
    assert not at.exception
    m = metrics(at)
    assert m["Runs on"] == "CPU" and m["Compute dtype"] in {"bfloat16", "float32"}
    assert m["Held-out perplexity"] == "148.4"  # from the checkpoint's card
    assert any("tefviz-lm" in md.value for md in at.markdown)
    assert any("python -m tefviz train lm" in c.value for c in at.code)
    links = [e.proto.label for e in _elements(at, "PageLink")]
    assert links == [p.title for p in PAGES[1:]]  # every page but Home itself


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "config.json").write_text("{oops"), "not valid JSON"),
        (lambda d: (d / "tokenizer.json").unlink(), "missing its tokenizer"),
        (lambda d: (d / "model.safetensors").write_bytes(b"junk"), "corrupt or truncated"),
    ],
    ids=["bad-config", "no-tokenizer", "corrupt-weights"],
)
def test_home_reports_an_unusable_checkpoint(checkpoints_root, damage, message):
    broken = checkpoints_root / "broken"
    shutil.copytree(checkpoints_root / "tefviz-lm", broken)
    damage(broken)
    at = _app().run()
    assert not at.exception
    assert any("broken" in e.value and message in e.value for e in at.error)
    assert metrics(at)["Held-out perplexity"] == "148.4"  # the good one still shows
    # the language-model page offers only the usable checkpoint
    at.switch_page("pages/language_model.py").run()
    assert not at.exception
    assert at.selectbox(key="language_model.model").options == [
        "tefviz-lm",
        "Hugging Face name (needs network)",
    ]


def test_lm_page_without_usable_checkpoints(checkpoints_root):
    (checkpoints_root / "tefviz-lm" / "tokenizer.json").unlink()
    at = _lm_page()
    assert not at.exception
    assert any("No usable language-model checkpoint" in w.value for w in at.warning)


def test_home_without_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("TEFVIZ_CHECKPOINTS", str(tmp_path / "none"))
    at = _app().run()
    assert not at.exception
    assert any("No checkpoints" in w.value for w in at.warning)


# --- language model page -----------------------------------------------------------------


def _lm_page(**query) -> AppTest:
    at = _app(**query)
    at.switch_page("pages/language_model.py")
    return at.run()


def test_lm_page_scores_a_sample_and_reacts_to_choices(checkpoints_root):
    at = _lm_page()
    assert not at.exception
    first = metrics(at)
    assert float(first["Perplexity"].replace(",", "")) > 1 and float(first["Bits per byte"]) > 0
    assert at.query_params["model"] == "tefviz-lm"
    second_id = heldout_samples()[1]["id"]
    at.selectbox(key="language_model.sample").select(second_id).run()
    assert not at.exception
    assert metrics(at)["Perplexity"] != first["Perplexity"]  # a different text was scored
    assert at.query_params["sample"] == second_id
    at.slider(key="language_model.pos").set_value(5).run()
    assert at.query_params["pos"] == "5"
    assert "actual:" in at.text[-1].value


def test_lm_page_opens_the_view_in_the_url(checkpoints_root):
    second_id = heldout_samples()[2]["id"]
    at = _lm_page(sample=second_id, pos="7")
    assert not at.exception
    assert at.selectbox(key="language_model.sample").value == second_id
    assert at.slider(key="language_model.pos").value == 7


def test_lm_page_ignores_a_bad_url(checkpoints_root):
    at = _lm_page(sample="<script>", model="../../etc/passwd", pos="-4")
    assert not at.exception
    assert at.selectbox(key="language_model.sample").value == heldout_samples()[0]["id"]
    assert at.selectbox(key="language_model.model").value == "tefviz-lm"
    assert at.slider(key="language_model.pos").value == 1
    for pos in ("nan", "1e9", "abc"):
        at = _lm_page(pos=pos)
        assert not at.exception and at.slider(key="language_model.pos").value == 1


def test_ignored_link_values_are_named_once(checkpoints_root):
    at = _lm_page(sample="<script>", model="../../etc/passwd", pos="1e9")
    notice = [i.value.replace("\\", "") for i in at.info if "Not used from the link" in i.value]
    assert len(notice) == 1
    for part in (
        "sample=<script> (not one of the choices)",
        "model=../../etc/passwd (not one of the choices)",
        "pos=1e9 (not a valid value)",
    ):
        assert part in notice[0], notice[0]
    at.selectbox(key="language_model.sample").select(
        heldout_samples()[1]["id"]
    ).run()  # said once, not on every run
    assert not any("Not used from the link" in i.value for i in at.info)


@pytest.mark.parametrize(
    "page, query",
    [
        (
            "pages/text.py",
            {"t": "7", "scorer": "nope", "mode": "x", "recent": "-1", "sample": "?", "model": "/etc"},
        ),
        (
            "pages/attention.py",
            {
                "n": "3",
                "pattern": "x",
                "a_sliding_window": "1e99",
                "source": "-5",
                "flex_block": "7",
                "flex_show": "maybe",
                "combine": "?",
                "how": "xor",
            },
        ),
        (
            "pages/images.py",
            {"t": "2", "model": "../x", "cls": "Dog", "idx": "99999", "side": "-1", "source": "ftp"},
        ),
        (  # a link from before page prefixes
            "pages/images.py",
            {
                "img_t": "2",
                "img_model": "../x",
                "img_cls": "Dog",
                "img_idx": "99999",
                "img_side": "-1",
                "img_source": "ftp",
            },
        ),
        ("pages/embeddings.py", {"method": "zip", "bits": "99", "rank": "-3"}),
        ("pages/efficient_attention.py", {"method": "x", "layer": "99", "head": "-1", "size": "0"}),
    ],
)
def test_every_parameter_out_of_range(image_root, page, query):
    at = _app(**query)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert any("Not used from the link" in i.value for i in at.info)


def test_lm_page_hub_field_never_reads_local_paths(checkpoints_root, tiny_lm_dir):
    # a shared link cannot make the server load a model from an arbitrary directory
    at = _lm_page(model="Hugging Face name (needs network)", hub=str(tiny_lm_dir))
    assert not at.exception
    assert any("not a Hugging Face model name" in e.value for e in at.error)
    assert not at.metric


def test_lm_page_hub_field_refuses_a_relative_folder(checkpoints_root, tiny_lm_dir, tmp_path, monkeypatch):
    """A name shaped like 'org/model' that is a folder relative to the server's working directory
    (a checkpoint, a copied model) is refused, with that reason."""
    shutil.copytree(tiny_lm_dir, tmp_path / "copied" / "model")
    monkeypatch.chdir(tmp_path)
    for name in ("checkpoints/tefviz-lm", "copied/model"):
        at = _lm_page(model="Hugging Face name (needs network)", hub=name)
        assert not at.exception and not at.metric
        assert any("path on this server" in e.value for e in at.error), [e.value for e in at.error]


def test_lm_page_starts_no_hub_request_before_a_name(checkpoints_root, monkeypatch):
    import tefviz.models

    asked = []
    monkeypatch.setattr(tefviz.models, "hub_preflight", lambda name: asked.append(name))
    at = _lm_page()
    at.selectbox(key="language_model.model").select("Hugging Face name (needs network)").run()
    assert not at.exception and not asked and at.text_input(key="language_model.hub").value == ""
    assert any("Type a hub model name" in i.value for i in at.info)


def test_error_messages_show_link_text_literally(checkpoints_root):
    """A shared link cannot put a live link or a remote image into the error box."""
    at = _lm_page(
        model="Hugging Face name (needs network)",
        hub="[Session expired: sign in again](https://evil.example/login) ![t](http://127.0.0.1:9/t.png)",
    )
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "Session expired" in shown
    assert "](" not in shown and "![" not in shown and "https\\:" in shown


def test_a_name_on_two_pages_is_two_values_and_the_url_stays_bare(checkpoints_root):
    """`sample` is a widget of the Language model page and of the Embeddings page: each keeps it under
    its own session key (`language_model.sample`, `embeddings.sample`), so a choice on one leaves the
    other at its own default, and each page's kept copy is its own. Links carry the bare name."""
    first, third = heldout_samples()[0]["id"], heldout_samples()[2]["id"]
    at = _lm_page()
    at.selectbox(key="language_model.sample").select(third).run()
    assert at.query_params["sample"] == third
    assert not [name for name in at.query_params if "." in name], at.query_params
    at.query_params.clear()  # the browser drops the query string on a page change
    at.query_params["windows"] = "1"  # the quickest Embeddings view
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="embeddings.sample").value == first
    assert at.query_params["sample"] == first and at.query_params["windows"] == "1"
    at.query_params.clear()
    at.switch_page("pages/language_model.py").run()
    assert not at.exception and at.selectbox(key="language_model.sample").value == third


def test_choices_survive_a_visit_to_another_page(checkpoints_root):
    third = heldout_samples()[2]["id"]
    at = _lm_page()
    at.selectbox(key="language_model.sample").select(third).run()
    at.slider(key="language_model.pos").set_value(9).run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/language_model.py").run()
    assert not at.exception
    assert (
        at.selectbox(key="language_model.sample").value == third
        and at.slider(key="language_model.pos").value == 9
    )
    # typed text too
    at.selectbox(key="language_model.sample").select("your own text").run()
    at.text_area(key="language_model.own").input("Kept across pages.").run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/language_model.py").run()
    assert at.text_area(key="language_model.own").value == "Kept across pages."


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">'])
def test_lm_page_renders_html_inert(checkpoints_root, text):
    at = _lm_page()
    at.selectbox(key="language_model.sample").select("your own text").run()
    at.text_area(key="language_model.own").input(f"Hello {text} world").run()
    assert not at.exception
    html = page_html(at)
    assert "<script>" not in html and "<img" not in html and "&lt;" in html


def test_lm_page_empty_one_token_and_unicode(checkpoints_root):
    at = _lm_page()
    at.selectbox(key="language_model.sample").select("your own text").run()
    at.text_area(key="language_model.own").input("   ").run()
    assert not at.exception and any("empty" in i.value for i in at.info)
    at.text_area(key="language_model.own").input("a").run()
    assert not at.exception and any("One token" in i.value for i in at.info)
    at.text_area(key="language_model.own").input("Emoji 🙂👍🏽, 日本語, עברית, and ‮RTL override‬.").run()
    assert not at.exception and metrics(at)["Perplexity"] != "n/a"


@pytest.mark.parametrize("text", ["a b", "é", "naïve café", "日本語", "🙂👍🏽🇺🇦"])
def test_lm_page_two_tokens_and_split_characters(checkpoints_root, text):
    """Two tokens (one position to inspect) and characters the byte-level BPE splits into several
    tokens: finite bits per byte, no exception box."""
    at = _lm_page()
    at.selectbox(key="language_model.sample").select("your own text").run()
    at.text_area(key="language_model.own").input(text).run()
    assert not at.exception, at.exception
    bpb = metrics(at)["Bits per byte"]
    assert bpb != "n/a" and bpb not in ("nan", "inf") and float(bpb) > 0


@pytest.mark.parametrize("size", [100_001, 10_000_000])
def test_lm_page_huge_pastes_are_kept_and_cut_with_a_notice(checkpoints_root, size):
    """Streamlit's max_chars used to drop a whole paste over 100,000 characters, silently."""
    at = _lm_page()
    at.selectbox(key="language_model.sample").select("your own text").run()
    paste = ("Mixed line endings\r\nand\rscripts: 日本語 ×ü " * (size // 30 + 1))[:size]
    at.text_area(key="language_model.own").input(paste).run()
    assert not at.exception
    assert at.text_area(key="language_model.own").value  # never silently emptied
    assert any("cut to fit" in w.value for w in at.warning)
    assert (size > 1_000_000) == any("the box keeps the first" in w.value for w in at.warning)
    assert metrics(at)["Tokens"]


def test_lm_page_long_text_is_cut_with_a_notice(checkpoints_root):
    at = _lm_page()
    at.selectbox(key="language_model.sample").select("your own text").run()
    at.text_area(key="language_model.own").input("The cat sat on the mat. " * 2000).run()
    assert not at.exception
    assert any("cut to fit" in w.value for w in at.warning)
    assert any("overlapping windows" in i.value for i in at.info)


def test_lm_page_hub_name_offline_is_a_clear_error(checkpoints_root):
    at = _lm_page()
    at.selectbox(key="language_model.model").select("Hugging Face name (needs network)").run()
    at.text_input(key="language_model.hub").input("no-such-org/no-such-model").run()
    assert not at.exception
    assert any("could not load" in e.value for e in at.error)
    # switching back keeps working: the failure did not lose the session
    at.selectbox(key="language_model.model").select("tefviz-lm").run()
    assert not at.exception and metrics(at)["Tokens"]


def test_lm_page_offers_csv_and_json_export(checkpoints_root):
    at = _lm_page()
    labels = [b.proto.label for b in _elements(at, "DownloadButton")]
    assert labels.count("CSV") >= 1 and labels.count("JSON") >= 1


def test_export_payloads_roundtrip():
    rows = [{"token": "<b>", "bits": 1.5}, {"token": "é🙂", "bits": None}]
    csv, js = export_payloads(rows)
    assert csv.decode().splitlines()[0] == "token,bits"
    assert json.loads(js) == rows
    csv, js = export_payloads({"a": {"b": 1}})
    assert csv is None and json.loads(js) == {"a": {"b": 1}}


def test_lm_page_picks_the_llama(llama_root):
    at = _lm_page()
    options = at.selectbox(key="language_model.model").options
    assert options == ["tefviz-lm", "tefviz-llama", "Hugging Face name (needs network)"]
    at.selectbox(key="language_model.model").select("tefviz-llama").run()
    assert not at.exception and not at.error
    m = metrics(at)
    assert float(m["Perplexity"].replace(",", "")) > 1 and m["Bits per byte"]
    assert any("Longer than the model's context (128 tokens)" in i.value for i in at.info)
    at.slider(key="language_model.pos").set_value(5).run()
    assert not at.exception and not at.error
    assert at.query_params["model"] == "tefviz-llama" and at.query_params["pos"] == "5"
    at = _lm_page(model="tefviz-llama", pos="5")
    assert not at.exception and at.selectbox(key="language_model.model").value == "tefviz-llama"
    assert at.slider(key="language_model.pos").value == 5


def test_model_choice_follows_the_user_across_pages(llama_root):
    """The model is the one choice the pages share (`shared=` in ui/state.py, ui.loaders.SHARED_LM):
    picked on one page, the next model page opens with it, with no link naming it."""
    at = _lm_page(model="tefviz-llama")
    for page in ("pages/efficient_attention.py", "pages/text.py", "pages/attention.py"):
        at.query_params.clear()  # the browser drops the query string on a page change
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        assert at.selectbox(key=f"{page[6:-3]}.model").value == "tefviz-llama", page
    at.selectbox(key="attention.model").select("tefviz-lm").run()
    at.query_params.clear()
    at.switch_page("pages/language_model.py").run()
    assert not at.exception and at.selectbox(key="language_model.model").value == "tefviz-lm"
