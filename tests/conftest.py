"""Shared fixtures: tiny randomly initialised models, built once per session. No GPU, no network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# Never touch the network; the hub code path is tested against a local cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TEFVIZ_DEVICE", "cpu")

REPO = Path(__file__).resolve().parent.parent


# --- AppTest helpers shared by the page tests --------------------------------------------------


def app_test(timeout: int = 180, **query: str):
    """The app (app.py, its navigation) with `query` in the URL, not yet run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    for key, value in query.items():
        at.query_params[key] = value
    return at


def open_page(page: str, timeout: int = 180, **query: str):
    """`page` (e.g. "pages/text.py") opened through app.py with `query` in the URL, as a shared
    link opens it, and run once."""
    at = app_test(timeout, **query)
    at.switch_page(page)
    return at.run()


def metrics(at) -> dict:
    """label -> shown value of every st.metric on the page."""
    return {m.label: m.value for m in at.metric}


def page_html(at) -> str:
    """The bodies of every st.html element, concatenated."""
    return "".join(e.proto.body for e in at.main if type(e).__name__ == "Html")


def plotly_specs(at) -> list[str]:
    """The JSON of every plotly chart on the page."""
    return [c.proto.spec for c in at.get("plotly_chart")]


SHIPPED_LM = REPO / "checkpoints" / "tefviz-lm"


def make_tiny_lm(out: Path, n_positions: int = 64, vocab: int = 320) -> Path:
    """A random 2-layer GPT-2 with a BPE tokenizer trained on the shipped held-out text."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tefviz.data.heldout import HELDOUT_PATH, heldout_text
    from tefviz.train.tokenizer import train_bpe

    out.mkdir(parents=True, exist_ok=True)
    text_file = out.parent / f"{out.name}-corpus.txt"
    text_file.write_text(heldout_text()[:20000])
    tok = train_bpe([text_file], vocab)
    import torch

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(cfg).half().save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    card = {
        "name": out.name,
        "summary": "tiny random test model",
        "architecture": {"class": "GPT2LMHeadModel", "layers": 2, "width": 32},
        "training_data": {
            "sources": [
                {
                    "name": "heldout",
                    "description": HELDOUT_PATH.name,
                    "package": "-",
                    "licence": "public domain",
                    "documents": 1,
                    "characters": 20000,
                }
            ]
        },
        "training": {
            "command": "python -m tefviz train lm --preset tiny",
            "steps": 0,
            "tokens_seen": 0,
            "log": [{"step": 1, "train_loss": 6.0, "valid_loss": 6.1, "tokens_seen": 512, "elapsed_s": 1.0}],
        },
        "metrics": {
            "heldout_austen": {
                "tokens": 10,
                "bytes": 40,
                "loss": 5.0,
                "perplexity": 148.4,
                "bits_per_byte": 1.8,
            }
        },
    }
    (out / "card.json").write_text(json.dumps(card))
    return out


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("models") / "tefviz-lm")


@pytest.fixture()
def checkpoints_root(tmp_path, tiny_lm_dir, monkeypatch) -> Path:
    """A checkpoints/ directory holding the tiny LM under the default name."""
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_lm_dir, root / "tefviz-lm")
    monkeypatch.setenv("TEFVIZ_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """train/valid/test splits made from the shipped held-out text (no Debian packages needed)."""
    from tefviz.data.heldout import heldout_text

    d = tmp_path_factory.mktemp("corpus")
    text = heldout_text()
    n = len(text)
    (d / "train.txt").write_text(text[: int(n * 0.8)])
    (d / "valid.txt").write_text(text[int(n * 0.8) : int(n * 0.9)])
    (d / "test.txt").write_text(text[int(n * 0.9) :])
    (d / "manifest.json").write_text(json.dumps({"sources": [{"name": "heldout"}], "splits": {}}))
    return d


def make_tiny_tef(root: Path, variant: str = "causal", base: str = "tefviz-lm") -> Path:
    """Untrained (random) TEF heads for the tiny LM under root/, saved as export_tef would,
    with a real held-out table computed on two short windows."""
    import torch

    from tefviz.lm import model_parts
    from tefviz.models import load_causal_lm
    from tefviz.text.cli_eval import eval_text
    from tefviz.text.tef import TEF_MODEL_TYPE, TEFConfig, TEFHeads

    out = root / f"{base}-tef-{variant}"
    lm = load_causal_lm(root / base, device=torch.device("cpu"), dtype=torch.float32)
    torch.manual_seed(3)
    parts = model_parts(lm.model)  # any supported architecture
    heads = TEFHeads(
        TEFConfig(
            variant=variant,
            n_layer=parts.n_layer,
            d_model=parts.d_model,
            base=base,
            train_t=[0.99] if variant == "paper" else [0.5, 1.0],
        )
    )
    with torch.no_grad():
        for h in heads.heads:
            h.weight.normal_(0, 0.5)
    if variant == "paper":
        lm.model.half().save_pretrained(out, safe_serialization=True)
    else:
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"model_type": TEF_MODEL_TYPE, "base": base}))
    lm.tokenizer.save_pretrained(out)
    heads.save(out)
    card = {
        "name": out.name,
        "kind": "tef",
        "variant": variant,
        "base_model": base,
        "summary": f"random {variant} TEF heads for tests",
        "architecture": {"heads": 2, "class": "TEFHeads"},
        "training": {"command": f"python -m tefviz train tef --variant {variant}", "steps": 0, "log": []},
        "metrics": {},
    }
    (out / "card.json").write_text(json.dumps(card))
    eval_text(
        str(root / base), [out], root.parent / f"eval-{variant}.json", windows=2, block=32, write_cards=True
    )
    return out


@pytest.fixture(scope="session")
def tiny_tef_root(tmp_path_factory, tiny_lm_dir) -> Path:
    """Built once: a checkpoints/ directory with the tiny LM and random causal and paper TEF heads."""
    root = tmp_path_factory.mktemp("tef") / "checkpoints"
    shutil.copytree(tiny_lm_dir, root / "tefviz-lm")
    make_tiny_tef(root, "causal")
    make_tiny_tef(root, "paper")
    return root


@pytest.fixture()
def tef_root(checkpoints_root, tiny_tef_root) -> Path:
    """checkpoints/ (a fresh copy per test) with the tiny LM and both TEF checkpoints."""
    for name in ("tefviz-lm-tef-causal", "tefviz-lm-tef-paper"):
        shutil.copytree(tiny_tef_root / name, checkpoints_root / name)
    return checkpoints_root


LLAMA = "tefviz-llama"  # the second embedded model's name: pages must pick it up when it lands
LLAMA_CHECKPOINTS = (LLAMA, f"{LLAMA}-tef-causal", f"{LLAMA}-tef-paper")


@pytest.fixture(scope="session")
def tiny_llama_root(tmp_path_factory) -> Path:
    """Built once: a tiny random Llama (context 128, the shipped tokenizer) under the second embedded
    model's name, with random causal and paper TEF heads trained on it."""
    from .lm_zoo import save_tiny

    root = tmp_path_factory.mktemp("llama") / "checkpoints"
    save_tiny("llama", root / LLAMA, context=128)
    make_tiny_tef(root, "causal", base=LLAMA)
    make_tiny_tef(root, "paper", base=LLAMA)
    return root


@pytest.fixture()
def llama_root(tef_root, tiny_llama_root) -> Path:
    """checkpoints/ (a fresh copy per test) with both embedded models, each with its two TEF heads:
    the tiny GPT-2 as tefviz-lm (context 64) and the tiny Llama as tefviz-llama (context 128)."""
    for name in LLAMA_CHECKPOINTS:
        shutil.copytree(tiny_llama_root / name, tef_root / name)
    return tef_root


@pytest.fixture()
def zoo_root(checkpoints_root, tmp_path):
    """Adds a tiny random checkpoint of any supported architecture to checkpoints/:
    zoo_root("gpt_neox") -> its name there."""
    from .lm_zoo import save_tiny

    def add(arch: str, context: int = 128) -> str:
        name = f"tiny-{arch}"
        save_tiny(arch, checkpoints_root / name, context=context)
        return name

    return add


IMAGE_TOKENIZERS = {
    "tefviz-image-svd-tef": "svd_tef",
    "tefviz-image-fft": "fft",
    "tefviz-image-svd": "svd_exact",
    "tefviz-image-vit": "patch",
}


def make_tiny_image_checkpoint(root: Path, name: str, tokenizer: str, eval_images: int = 100) -> Path:
    """A random, tiny classifier saved as `export images` would, with an evaluation table in its card
    computed on the first images of the shipped subset (the ViT gets TNT heads)."""
    import torch

    from tefviz.images.checkpoint import save_image_checkpoint
    from tefviz.images.evaluate import eval_inputs, evaluate_model
    from tefviz.images.model import ImageClassifier
    from tefviz.images.tokenizers import ImageConfig

    torch.manual_seed(len(name))
    cfg = ImageConfig(
        tokenizer=tokenizer,
        dim=16,
        depth=2,
        heads=2,
        mlp=32,
        conv_channels=2,
        tnt_layers=(0,) if tokenizer == "patch" else (),
    )
    model = ImageClassifier(cfg).eval()
    x, y = eval_inputs()
    card = {
        "name": name,
        "summary": f"random tiny {tokenizer} classifier for tests",
        "training": {
            "command": f"python -m tefviz train images --tokenizer {tokenizer}",
            "steps": 0,
            "log": [],
        },
        "metrics": {"valid_accuracy": 0.1},
        "evaluation": evaluate_model(model, x[:eval_images], y[:eval_images], progress=False),
    }
    save_image_checkpoint(model, root / name, card)
    return root / name


@pytest.fixture(scope="session")
def tiny_image_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images") / "checkpoints"
    for name, tokenizer in IMAGE_TOKENIZERS.items():
        make_tiny_image_checkpoint(root, name, tokenizer)
    return root


@pytest.fixture()
def image_root(checkpoints_root, tiny_image_root) -> Path:
    """checkpoints/ (a fresh copy per test) with the tiny LM and the four tiny image classifiers."""
    for name in IMAGE_TOKENIZERS:
        shutil.copytree(tiny_image_root / name, checkpoints_root / name)
    return checkpoints_root
