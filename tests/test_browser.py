"""Real browser: the app served on localhost, every page opened in headless Chromium.

Fails on any Streamlit exception box; saves a full-page screenshot per page to
tests/screenshots/. Uses Debian's chromium through playwright (no browser download).
Skipped where chromium is absent, unless TEFVIZ_REQUIRE_BROWSER=1 (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ui.registry import PAGES

from .conftest import REPO, SHIPPED_LM

SHOTS = REPO / "tests" / "screenshots"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser
if CHROMIUM is None:
    if os.environ.get("TEFVIZ_REQUIRE_BROWSER") == "1":
        raise RuntimeError("TEFVIZ_REQUIRE_BROWSER=1 but Debian chromium is not installed")
    pytest.skip("Debian chromium not installed", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve():
    """Start the app as `make run` serves it, on the shipped checkpoints, bound to localhost."""
    port = _free_port()
    SHOTS.mkdir(exist_ok=True)
    env = {**os.environ, "TEFVIZ_CHECKPOINTS": str(SHIPPED_LM.parent), "HF_HUB_OFFLINE": "1"}
    log = open(REPO / "tests" / "screenshots" / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        log.close()
        raise RuntimeError("streamlit did not start: " + (REPO / "tests/screenshots/server.log").read_text())
    return url, proc, log


def _stop(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def server():
    url, proc, log = _serve()
    yield url
    _stop(proc, log)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _settle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the script run has finished and the page has drawn its content.

    stApp carries data-test-script-state: initial -> running -> notRunning.
    """
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=timeout_ms)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_timeout(700)


def _grow(page) -> None:
    """Streamlit scrolls inside the app and draws some elements only once they are in view:
    grow the viewport to the whole content."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return m ? m.getBoundingClientRect().top + m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size({"width": page.viewport_size["width"], "height": min(int(height) + 40, 9000)})
    page.wait_for_timeout(600)


def _screenshot(page, name: str) -> None:
    _grow(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()
    dialogs = page.locator('[role="dialog"]')
    assert dialogs.count() == 0, dialogs.first.inner_text()  # e.g. "Page not found" over a link


LM_PAGES = ("text", "attention", "efficient_attention", "embeddings", "language_model")


@pytest.mark.parametrize("stem", LM_PAGES)
def test_lm_pages_render_the_second_embedded_model(server, browser, stem):
    """Each page that runs a language model, opened on the shipped Llama by a link."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/{stem}?model=tefviz-llama")
    _settle(page, timeout_ms=240_000)
    _no_exception(page)
    assert "model=tefviz-llama" in page.url  # the page kept the link's model and published it
    assert "tefviz-llama" in page.content()  # shown in the model picker
    assert page.locator('[data-testid="stAlert"]', has_text="Not used from the link").count() == 0
    _screenshot(page, f"{stem}_llama")
    page.close()


@pytest.mark.parametrize("spec", PAGES, ids=[p.title for p in PAGES])
def test_page_renders_in_chromium(server, browser, spec):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server}/{spec.url_path}")
    _settle(page)
    if page.locator(".js-plotly-plot").count():
        # some charts sit in collapsed expanders (never visible): wait until one of them is drawn
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot .main-svg')]"
            ".some(e => e.getBoundingClientRect().height > 0)",
            timeout=60_000,
        )
    _no_exception(page)
    assert not dialogs
    _screenshot(page, Path(spec.path).stem)
    page.close()


def test_home_shows_the_shipped_model(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server)
    _settle(page)
    _grow(page)
    # wait for the text itself (in the DOM: sections below the fold may not be laid out yet), not a
    # fixed time: on a loaded machine the cards arrive after the title
    for want in ("tefviz-lm", "Held-out perplexity", "Bits per byte", "tefviz-lm-tef-causal"):
        page.wait_for_function("w => document.body.textContent.includes(w)", arg=want, timeout=120_000)
    page.close()


def test_a_foreign_host_header_is_refused(server):
    """DNS rebinding: a page on another domain that resolves to 127.0.0.1 cannot open a session."""
    import http.client

    port = int(server.rsplit(":", 1)[1])
    statuses = {}
    for host in ("evil.example", "127.0.0.1"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "GET",
            "/_stcore/stream",
            headers={
                "Host": f"{host}:{port}",
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        statuses[host] = conn.getresponse().status
        conn.close()
    assert statuses == {"evil.example": 403, "127.0.0.1": 101}, statuses


def test_link_text_in_an_error_box_stays_text_and_the_favicon_is_local(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(
        f"{server}/language_model?model=Hugging%20Face%20name%20(needs%20network)"
        "&hub=[Session%20expired:%20sign%20in%20again](https://evil.example/login)"
        "%20![t](http://127.0.0.1:9/t.png)"
    )
    _settle(page)
    page.wait_for_selector('[data-testid="stAlertContentError"]', timeout=60_000)
    error = page.locator('[data-testid="stAlertContentError"]').first
    shown = error.inner_text().replace("\u200b", "")
    assert "[Session expired: sign in again](https://evil.example/login)" in shown
    assert error.locator("a, img").count() == 0
    elsewhere = [u for u in requests if not u.startswith(server + "/")]
    assert not elsewhere, f"every request stays on the server (no remote image, no icon CDN): {elsewhere}"
    _no_exception(page)
    page.close()


def test_short_and_split_character_texts_in_chromium(server, browser):
    """Two tokens, and characters the byte-level BPE splits across tokens: finite bits per byte."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/language_model?sample=your+own+text")
    _settle(page)
    area = page.get_by_label("Your text")
    for text in ("a b", "é", "naïve café", "日本語", "🙂👍🏽🇺🇦"):
        area.fill(text)
        area.press("Control+Enter")
        page.wait_for_function(
            "t => [...document.querySelectorAll('.tefviz-strip')].some(s => [...s.querySelectorAll("
            "'span.tok')].map(x => x.textContent).join('').replaceAll('\u2026', '') === t)",
            arg=text,
            timeout=60_000,
        )
        _settle(page)
        _no_exception(page)
        metric = page.locator('[data-testid="stMetric"]', has_text="Bits per byte")
        value = metric.locator('[data-testid="stMetricValue"]').inner_text()
        assert value not in ("nan", "inf", "n/a") and float(value) > 0, (text, value)
    page.close()


def test_a_lone_surrogate_in_a_paste_does_not_freeze_the_page(server, browser):
    """The browser encodes a lone surrogate as bytes that are not UTF-8; the server used to drop
    the message and every later one from that page."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/language_model?sample=your+own+text")
    _settle(page)
    area = page.get_by_label("Your text")
    area.fill("A broken paste follows:")
    page.evaluate("""() => {
        const el = document.querySelector('textarea');
        const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
        set.call(el, 'A broken \ud800 paste, then more text.');
        el.dispatchEvent(new Event('input', { bubbles: true }));
    }""")
    area.press("Control+Enter")
    page.wait_for_function("() => document.body.textContent.includes('broken \ufffd paste')", timeout=60_000)
    _settle(page)
    _no_exception(page)
    area.fill("The page still answers after the broken paste.")  # a later edit is not lost
    area.press("Control+Enter")
    page.wait_for_function("() => document.body.textContent.includes('still answers')", timeout=60_000)
    _settle(page)
    _no_exception(page)
    page.close()


def test_script_in_text_stays_inert_in_a_real_browser(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server}/language_model?sample=your+own+text")
    _settle(page)
    area = page.get_by_label("Your text")
    area.fill('Hi <script>alert("xss")</script> <img src=x onerror="alert(1)"> there')
    area.press("Control+Enter")
    page.wait_for_selector(".tefviz-strip", timeout=60_000)
    _settle(page)
    strip = page.locator(".tefviz-strip").first
    assert "<script>" in strip.inner_text()  # shown as text...
    assert strip.locator("script, img").count() == 0  # ...never as elements
    assert not dialogs
    _no_exception(page)
    _screenshot(page, "language_model_script_input")
    page.close()


def test_text_page_threshold_from_a_shared_link(server, browser):
    """A teacher's link with t=0.5 opens the Text page with tokens dropped and struck through."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/text?t=0.5&scorer=attention&mode=evict")
    _settle(page)
    _no_exception(page)
    page.wait_for_selector(".tefviz-strip", timeout=60_000)
    assert page.locator('.tefviz-strip span[style*="line-through"]').count() > 0
    body = page.text_content("body")  # DOM text: sections below the fold may not be laid out yet
    assert "Perplexity, dropped at t" in body
    _screenshot(page, "text_attention_t050")
    page.close()


def test_generate_page_runs_on_a_button_press(server, browser):
    """Generation with an evicted cache on the shipped model: pressed, it shows the two texts (evicted
    tokens struck through), the metrics and both charts; the choices stay in the address bar."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/generate?policy=streaming_llm&budget=24&new_tokens=48")
    _settle(page)
    _no_exception(page)
    assert page.locator('[data-testid="stMetric"]').count() == 0  # nothing runs before the press
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
    _settle(page, timeout_ms=180_000)
    _no_exception(page)
    body = page.text_content("body")
    for want in (
        "Tokens generated",
        "Final cache vs dense",
        "Mean KL",
        "Diverges at step",
        "Cache size per step",
        "KL(dense ‖ evicted) per step",
    ):
        assert want in body, want
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "48"
    assert page.locator('.tefviz-strip span[style*="line-through"]').count() > 0
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000
    )
    assert "budget=24" in page.url and "policy=streaming_llm" in page.url
    _screenshot(page, "generate")
    page.close()


def test_images_page_fft_link_and_tabs(server, browser):
    """A shared link opens the FFT tokenizer at side 16; the flip gallery and the training-free
    views open in real Chromium."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/images?model=tefviz-image-fft&budget_fft=fixed+side&side=16&cls=Sneaker&idx=3")
    _settle(page)
    _no_exception(page)
    body = page.text_content("body")
    assert "17 / 65" in body and "log spectrum, kept square 16x16" in body
    _screenshot(page, "images_fft_side16")
    page.get_by_role("tab", name="Error analysis").click()
    page.wait_for_timeout(800)
    assert "Broken (right with all tokens, wrong now)" in page.text_content("body")
    _screenshot(page, "images_fft_flips")
    page.get_by_role("tab", name="Spectrum and SVD (training-free)").click()
    page.wait_for_timeout(800)
    _no_exception(page)
    _screenshot(page, "images_fft_training_free")
    page.close()


def test_images_page_upload_in_chromium(server, browser, tmp_path):
    """A real upload (an RGBA PNG of a dark shape on transparency) is converted and classified."""
    from PIL import Image

    img = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    img.paste((40, 40, 40, 255), (30, 10, 90, 80))
    path = tmp_path / "bag.png"
    img.save(path)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/images?source=Upload")
    _settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.wait_for_selector("text=Converted for the model", timeout=60_000)
    _settle(page)
    _no_exception(page)
    assert "Tokens kept (CLS included)" in page.text_content("body")
    _screenshot(page, "images_upload")
    page.close()


def test_first_visit_to_a_shared_sub_page_link_gets_the_app_navigation(browser):
    """On a fresh server, a link straight to a sub-page must not fall into Streamlit's legacy pages/
    mode (file-name navigation, no wide layout): ui/routing.py sends it through app.py. The link is
    one from before page prefixes (img_<name>): it still opens the view, and the address bar then
    carries the new names."""
    url, proc, log = _serve()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/images?img_model=tefviz-image-fft&img_budget_fft=fixed+side&img_side=8")
        _settle(page)
        _no_exception(page)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Attention patterns" in nav and "efficient attention" not in nav, nav
        body = page.text_content("body")
        assert "5 / 65" in body  # the link's settings survived the rerun
        assert "side=8" in page.url and "img_" not in page.url, page.url
        page.close()
    finally:
        _stop(proc, log)
