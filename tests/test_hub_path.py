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


def test_hub_model_needing_remote_code_is_refused_with_that_reason(hub_cache):
    import json

    snap = next((hub_cache / "models--tefviz-test--tiny-gpt2" / "snapshots").iterdir())
    config = json.loads((snap / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (snap / "config.json").write_text(json.dumps(config))
    with pytest.raises(HubUnavailableError, match="needs its own Python code"):
        load_causal_lm("tefviz-test/tiny-gpt2", device="cpu")


def test_pickle_only_is_refused_with_that_reason(hub_cache):
    snap = next((hub_cache / "models--tefviz-test--tiny-gpt2" / "snapshots").iterdir())
    (snap / "model.safetensors").rename(snap / "pytorch_model.bin")
    with pytest.raises(HubUnavailableError, match="no safetensors weights"):
        load_causal_lm("tefviz-test/tiny-gpt2", device="cpu")


def test_a_hub_name_that_is_a_local_folder_is_refused(tmp_path, tiny_lm_dir, monkeypatch):
    from tefviz.models import load_from_hub

    shutil.copytree(tiny_lm_dir, tmp_path / "org" / "model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubUnavailableError, match="path on this server"):
        load_from_hub("org/model")


def test_offline_is_detected_at_once(monkeypatch):
    """No network: one failed request, not from_pretrained's retries (about 47 s measured)."""
    import time

    import huggingface_hub

    from tefviz.models import load_from_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def unreachable(self, repo_id, **kwargs):
        calls.append(kwargs.get("timeout"))
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    t = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="cannot be reached"):
        load_from_hub("openai-community/gpt2")
    assert time.perf_counter() - t < 2 and calls and calls[0] <= 10


def test_a_half_cached_model_asks_the_hub_and_a_gated_one_says_so(hub_cache, monkeypatch):
    """A cache holding config.json but no weights (a download that broke off) is not taken for a
    pickle-only model: the hub is asked, and a gated model gets its own reason."""
    from types import SimpleNamespace

    import huggingface_hub

    snap = next((hub_cache / "models--tefviz-test--tiny-gpt2" / "snapshots").iterdir())
    (snap / "model.safetensors").unlink()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    weights = [SimpleNamespace(rfilename="model.safetensors")]
    info = SimpleNamespace(gated="manual", siblings=weights, config={})
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kw: info)
    with pytest.raises(HubUnavailableError, match="gated"):
        load_causal_lm("tefviz-test/tiny-gpt2", device="cpu")
