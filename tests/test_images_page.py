"""AppTest of the Images page on tiny random classifiers: every tokenizer, every input source,
the budget widgets, the accuracy chart, the flip gallery and bad uploads."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from torch import nn

from tefviz.images.budget import Budget
from tefviz.images.tokenizers import TOKENIZERS, ImageConfig, ImageTokenizer, TokenBatch

from .conftest import REPO, metrics, open_page


def _page(**query) -> AppTest:
    return open_page("pages/images.py", 180, **query)


def _charts(at) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


def test_svd_tef_threshold_changes_the_kept_tokens(image_root):
    at = _page()
    assert not at.exception, at.exception
    assert at.radio(key="images.model").value == "tefviz-image-svd-tef"
    before = metrics(at)["Tokens kept (CLS included)"]
    at.slider(key="images.t").set_value(0.3).run()
    assert not at.exception
    after = metrics(at)["Tokens kept (CLS included)"]
    assert int(after.split("/")[0]) < int(before.split("/")[0]) and after.endswith("/ 65")
    assert at.query_params["t"] == "0.3"
    at.radio(key="images.budget_svd_tef").set_value("top-k").run()
    at.slider(key="images.k_svd_tef").set_value(5).run()
    assert metrics(at)["Tokens kept (CLS included)"] == "6 / 65"
    assert "Accuracy vs tokens" in [t.label for t in at.tabs]
    assert any("evaluation images" in c.value for c in at.caption)


def test_every_tokenizer_renders(image_root):
    at = _page()
    for name in ("tefviz-image-fft", "tefviz-image-svd", "tefviz-image-vit"):
        at.radio(key="images.model").set_value(name).run()
        assert not at.exception, (name, at.exception)
        assert len(at.get("plotly_chart")) >= 5, name
    at.slider(key="images.keep").set_value(0.25).run()
    assert metrics(at)["Tokens kept (CLS included)"] == "17 / 65"
    at.radio(key="images.model").set_value("tefviz-image-fft").run()
    at.select_slider(key="images.side").set_value(8).run()
    assert metrics(at)["Tokens kept (CLS included)"] == "5 / 65"
    at.radio(key="images.budget_fft").set_value("energy share p").run()
    assert not at.exception


def test_gallery_flip_analysis_and_open(image_root):
    at = _page(t="0.2")
    labels = [m.label for m in at.metric]
    assert "Broken (right with all tokens, wrong now)" in labels
    at.selectbox(key="images.cls").select("Bag").run()
    at.slider(key="images.idx").set_value(7).run()
    assert metrics(at)["True class"] == "Bag"
    assert any(e.label.startswith("Gallery: the 200 Bag images") for e in at.expander)
    opens = [b for b in at.button if b.key and b.key.startswith("images.open_")]
    if opens:  # random models flip plenty at t = 0.2
        target = opens[0]
        target.click().run()
        assert not at.exception
        assert at.radio(key="images.source").value == "Evaluation subset"


def test_natural_photo_and_training_free_views(image_root):
    at = _page(source="Natural photo")
    assert not at.exception, at.exception
    assert at.selectbox(key="images.photo").value
    assert any("Converted for the model" in c.value for c in at.caption)
    at.slider(key="images.free_k_128").set_value(10).run()
    assert not at.exception


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A valid PNG whose header claims 30000 x 30000 pixels (the IHDR patched, CRC fixed)."""
    import struct
    import zlib

    data = bytearray(_png(Image.new("L", (8, 8))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 30000, 30000)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


def _odd_images() -> dict[str, bytes]:
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgba.paste((200, 30, 30, 255), (10, 5, 30, 25))
    deep = Image.fromarray((np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16))
    frames = [Image.new("P", (20, 20), i * 60) for i in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    cmyk = io.BytesIO()
    Image.new("CMYK", (30, 30), (0, 0, 0, 200)).save(cmyk, format="JPEG")
    return {
        "alpha.png": _png(rgba),
        "deep.png": _png(deep),
        "anim.gif": gif.getvalue(),
        "cmyk.jpg": cmyk.getvalue(),
        "one.png": _png(Image.new("L", (1, 1), 255)),
        "palette.png": _png(Image.new("RGB", (20, 20), (250, 250, 250)).convert("P")),
    }


def test_bad_uploads_get_a_message_and_keep_the_page(image_root):
    at = _page(source="Upload")
    assert not at.exception
    assert any("Upload a picture" in i.value for i in at.info)
    at.slider(key="images.t").set_value(0.42).run()
    bad = {
        "empty.png": b"",
        "page.png": b"<script>alert(1)</script>",
        "broken.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
        "bomb.png": _bomb_png(),
    }
    for filename, data in bad.items():
        at.file_uploader(key="images.upload").upload(filename, data, "image/png").run()
        assert not at.exception, filename
        errors = " ".join(e.value for e in at.error)
        assert "Reading your image" in errors, filename
        assert at.slider(key="images.t").value == 0.42  # the user's other choices survive
    assert "pixels" in errors  # the last one, the decompression bomb


def test_odd_uploads_are_converted_and_explained(image_root):
    at = _page(source="Upload")
    for filename, data in _odd_images().items():
        at.file_uploader(key="images.upload").upload(filename, data, "image/png").run()
        assert not at.exception, filename
        assert not at.error, (filename, [e.value for e in at.error])
        assert "Tokens kept (CLS included)" in metrics(at), filename
    steps = " ".join(c.value for c in at.caption)
    assert "Converted for the model" in steps


def test_home_shows_image_cards(image_root):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels.count("Evaluation-subset accuracy") == 4
    assert any("tefviz-image-svd-tef" in m.value for m in at.markdown)


def test_unusable_image_checkpoint_is_named_and_others_still_work(image_root):
    (image_root / "tefviz-image-fft" / "model.safetensors").write_bytes(b"not weights")
    at = _page()
    assert not at.exception
    shown = [w.value.replace("\\", "") for w in at.warning]  # markdown escapes removed
    assert any("tefviz-image-fft" in w and "corrupt" in w for w in shown)
    assert "tefviz-image-fft" not in at.radio(key="images.model").options


def test_no_image_checkpoint_is_a_clear_message(checkpoints_root):
    at = _page()
    assert not at.exception
    assert any("No usable image checkpoint" in w.value for w in at.warning)


def test_the_same_name_on_two_pages_is_two_values(image_root):
    """Images and Attention both have a `source` (a picture source; a token number): each page keeps it
    under its own session key (`images.source`, `attention.source`), so a choice on one never reaches
    the other (a string kept under a shared `source` once broke Attention's number input)."""
    at = _page(source="Natural photo")
    assert at.radio(key="images.source").value == "Natural photo"
    at.query_params.clear()  # the browser drops the query string on a page change
    at.switch_page("pages/attention.py").run()
    assert not at.exception, at.exception
    assert at.number_input(key="attention.source").value == 0  # its own default
    at.number_input(key="attention.source").set_value(5).run()
    assert at.query_params["source"] == "5"  # the URL name stays bare
    at.query_params.clear()
    at.switch_page("pages/images.py").run()
    assert not at.exception and at.radio(key="images.source").value == "Natural photo"  # kept per page
    assert at.query_params["source"] == "Natural photo"


def test_a_link_from_before_page_prefixes_still_opens_the_view(image_root):
    """Images links used to name their values img_<name>: they still set the widgets, and the page
    then publishes the new bare names in their place."""
    at = _page(
        img_model="tefviz-image-fft", img_budget_fft="fixed side", img_side="8", img_cls="Bag", img_idx="7"
    )
    assert not at.exception, at.exception
    assert at.radio(key="images.model").value == "tefviz-image-fft"
    assert at.select_slider(key="images.side").value == 8
    assert at.selectbox(key="images.cls").value == "Bag" and at.slider(key="images.idx").value == 7
    assert metrics(at)["Tokens kept (CLS included)"] == "5 / 65" and metrics(at)["True class"] == "Bag"
    params = dict(at.query_params)
    assert params["model"] == "tefviz-image-fft" and params["side"] == "8" and params["idx"] == "7"
    assert params["budget_fft"] == "fixed side" and params["cls"] == "Bag"
    assert not [name for name in params if name.startswith("img_") or "." in name], params
    # a move publishes the new name only
    at.select_slider(key="images.side").set_value(16).run()
    assert at.query_params["side"] == "16" and "img_side" not in at.query_params
    # the new name wins over an old one in the same link; a bad old value is named as the link spells it
    at = _page(img_t="0.5", t="0.3")
    assert at.slider(key="images.t").value == 0.3 and "img_t" not in at.query_params
    at = _page(img_t="2")
    assert at.slider(key="images.t").value == 0.8  # the default
    assert any("img_t=2 (outside 0 to 1)" in i.value.replace("\\", "") for i in at.info)


class RowsTokenizer(ImageTokenizer):
    """Patch tokens of the top rows only, registered by the test below. At module level: the page
    classifies the subset in the background worker process, which imports the class by name."""

    name, label, order = "dummy_rows", "Top rows", -1
    description = "Patch tokens of the top rows of the grid only (a test tokenizer)."

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.proj = nn.Conv2d(1, cfg.dim, cfg.patch, stride=cfg.patch)

    @classmethod
    def own_budgets(cls, cfg: ImageConfig) -> tuple[Budget, ...]:
        rows = tuple(range(2, cfg.grid + 1, 2))
        return (
            Budget(
                "rows",
                "rows",
                "rows",
                "Grid rows kept",
                "dummy_rows",
                cfg.grid,
                choices=rows,
                table=(cfg.grid // 2,),
            ),
        )

    def forward(self, images: torch.Tensor, rows: int | None = None, **budget) -> TokenBatch:
        x = self.proj(images).flatten(2).transpose(1, 2)
        pos = self.grid_positions(x.shape[0], x.device)
        keep = self.cfg.grid * (rows or self.cfg.grid)
        return TokenBatch(x[:, :keep], pos[:, :keep])


def test_a_new_tokenizer_reaches_the_page_through_the_registry_alone(checkpoints_root):
    """A tokenizer is its own class, registered: its budget (a knob of its own, not a Selection field),
    evaluation table, order and figures reach the page, `eval images` and the classifier with no
    other file edited."""
    from tefviz.images.budget import Selection
    from tefviz.images.evaluate import settings_for
    from tefviz.images.model import ImageClassifier

    from .conftest import make_tiny_image_checkpoint

    TOKENIZERS.register(RowsTokenizer)
    try:
        model = ImageClassifier(ImageConfig(tokenizer="dummy_rows", dim=16, depth=1, heads=2, mlp=32))
        assert [s.label for s in settings_for(model)] == ["all tokens", "rows = 4"]
        assert model(torch.rand(2, 1, 32, 32), Selection(knobs=(("rows", 2),))).n_tokens.tolist() == [17, 17]
        make_tiny_image_checkpoint(checkpoints_root, "tefviz-image-rows", "dummy_rows", eval_images=20)
        at = _page()
        assert not at.exception, at.exception
        assert at.radio(key="images.model").value == "tefviz-image-rows"  # order -1: first
        assert metrics(at)["Tokens kept (CLS included)"] == "65 / 65"
        at.select_slider(key="images.dummy_rows").set_value(2).run()
        assert not at.exception, at.exception
        assert metrics(at)["Tokens kept (CLS included)"] == "17 / 65"
        assert at.query_params["dummy_rows"] == "2"
        assert "plain_input" in _charts(at)[0]  # the default figures: the input
        assert any("Top rows" in c.value and "classifies" in c.value for c in at.caption)  # measured, starred
    finally:
        TOKENIZERS.unregister("dummy_rows")


def test_a_budget_move_starts_the_measurement_before_the_script_and_only_if_on(image_root, monkeypatch):
    """The slider's callback (run by Streamlit before the script) submits the job at once, so under a
    class it does not wait for this session's run to reach the budget; with the toggle off, none."""
    from ui import image_cache

    submitted = []
    original = image_cache.subset_job
    monkeypatch.setattr(
        image_cache, "subset_job", lambda model_key, sel: submitted.append(sel.t) or original(model_key, sel)
    )
    at = _page()
    submitted.clear()
    at.slider(key="images.t").set_value(0.35).run()
    assert not at.exception, at.exception
    assert submitted[:2] == [0.35, 0.35]  # the callback's, then the script's own (the same job)
    at.toggle(key="images.measure").set_value(False).run()
    submitted.clear()
    at.slider(key="images.t").set_value(0.45).run()
    assert not at.exception and submitted == []
    assert "Turn on the measurement" in " ".join(i.value for i in at.info)
