"""The Hugging Face loading path, exercised offline: a random-init model in a local hub cache."""

import shutil

import pytest

from tefviz.errors import HubUnavailableError
from tefviz.models import load_causal_lm


@pytest.fixture()
def hub_cache(tmp_path, tiny_lm_dir, monkeypatch):
    # the hub cache layout: models--org--name/{refs/main, snapshots/<commit>/files}
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--tefviz-test--tiny-gpt2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_lm_dir, repo / "snapshots" / commit)
    # huggingface_hub reads its cache location once, at import: patch the constant too
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_hub_name_loads_through_from_pretrained(hub_cache):
    lm = load_causal_lm("tefviz-test/tiny-gpt2", attention="eager", device="cpu")
    assert lm.source == "hub" and lm.name == "tefviz-test/tiny-gpt2"
    assert lm.model.config._attn_implementation == "eager"
    out = lm.model(**lm.tokenizer("Emma was clever.", return_tensors="pt"), output_attentions=True)
    assert len(out.attentions) == lm.model.config.n_layer  # eager attention returns maps


def test_hub_pickle_only_model_is_refused(hub_cache):
    snap = next((hub_cache / "models--tefviz-test--tiny-gpt2" / "snapshots").iterdir())
    (snap / "model.safetensors").rename(snap / "pytorch_model.bin")
    with pytest.raises(HubUnavailableError):
        load_causal_lm("tefviz-test/tiny-gpt2", device="cpu")
