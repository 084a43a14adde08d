"""Unusable checkpoints and unreachable hub names give clear errors, in the core and the CLI."""

import os
import shutil
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from tefviz.checkpoints import (
    checkpoint_version,
    inspect_checkpoint,
    list_checkpoints,
    resolve_checkpoint,
    validate_checkpoint,
)
from tefviz.cli import main
from tefviz.errors import CheckpointError, HubUnavailableError
from tefviz.models import load_causal_lm, load_checkpoint, load_from_hub

from .conftest import SHIPPED_LM


def _drop_a_layer(d: Path) -> None:
    """Weights that parse but lack tensors: from_pretrained would random-initialise them."""
    w = load_file(d / "model.safetensors")
    save_file({k: v for k, v in w.items() if ".h.1." not in k}, d / "model.safetensors")


@pytest.fixture()
def broken(tmp_path, tiny_lm_dir):
    def make(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(tiny_lm_dir, d)
        return d

    return make


def test_tiny_checkpoint_is_valid_and_counted(tiny_lm_dir):
    validate_checkpoint(tiny_lm_dir)
    info = inspect_checkpoint(tiny_lm_dir)
    assert info.usable and info.parameters and info.card["summary"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "config.json").unlink(), "no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "tokenizer.json").unlink(), "missing its tokenizer"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00\x01garbage"), "corrupt or truncated"),
        (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"), "only pickle weights"),
        (lambda d: (d / "tokenizer.json").write_text('{"trunc'), "tokenizer.json is corrupt"),
        (_drop_a_layer, "missing weights"),
    ],
    ids=[
        "no-config",
        "bad-json",
        "no-tokenizer",
        "corrupt-weights",
        "pickle-only",
        "bad-tokenizer",
        "missing-tensors",
    ],
)
def test_damaged_checkpoints_fail_clearly(broken, damage, message, capsys):
    d = broken("damaged")
    damage(d)
    with pytest.raises(CheckpointError, match=message):
        load_causal_lm(d)
    if message != "missing weights":  # found only by building the model, i.e. on load
        assert inspect_checkpoint(d).error is not None
    # the CLI says the same in one line and exits 2, with no traceback
    assert main(["eval", "lm", str(d)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_truncated_weights(broken):
    d = broken("truncated")
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        validate_checkpoint(d)


def test_missing_directory():
    with pytest.raises(CheckpointError, match="does not exist"):
        load_causal_lm(Path("/nonexistent/model"))


def test_unknown_hub_name_offline(capsys):
    with pytest.raises(HubUnavailableError, match="Hugging Face hub"):
        load_causal_lm("no-such-org/no-such-model")
    assert main(["eval", "lm", "no-such-org/no-such-model"]) == 2
    assert "could not load" in capsys.readouterr().err


def test_list_flags_unusable_checkpoints(tmp_path, tiny_lm_dir):
    shutil.copytree(tiny_lm_dir, tmp_path / "good")
    (tmp_path / "empty").mkdir()
    infos = {c.name: c for c in list_checkpoints(tmp_path)}
    assert infos["good"].usable and not infos["empty"].usable


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "..", "x\x00y"])
def test_resolve_refuses_paths_outside_root(tmp_path, name):
    with pytest.raises(CheckpointError):
        resolve_checkpoint(name, tmp_path)


def test_resolve_inside_root(tmp_path):
    assert resolve_checkpoint("tefviz-lm", tmp_path) == (tmp_path / "tefviz-lm").resolve()


def test_version_changes_when_weights_are_rewritten(broken):
    d = broken("rewritten")
    before = checkpoint_version(d)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes())
    os.utime(w, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert checkpoint_version(d) != before


@pytest.mark.parametrize("name", ["/etc", "../x", "~/.cache/m", "a/b/c", "org/..", "gpt2 --evil"])
def test_hub_loader_takes_only_hub_names(name):
    with pytest.raises(HubUnavailableError, match="not a Hugging Face model name"):
        load_from_hub(name)


def test_app_checkpoint_loader_stays_inside_the_root(checkpoints_root, tiny_lm_dir):
    assert load_checkpoint("tefviz-lm").name == "tefviz-lm"
    with pytest.raises(CheckpointError):
        load_checkpoint(str(tiny_lm_dir))  # an absolute path is not a checkpoint name


def test_shipped_lm_is_complete():
    validate_checkpoint(SHIPPED_LM)
    info = inspect_checkpoint(SHIPPED_LM)
    card = info.card
    for key in ("architecture", "training_data", "training", "metrics", "licence"):
        assert key in card, key
    assert card["training"]["command"].startswith("python -m tefviz train lm")
    assert card["training"]["tokens_seen"] > 1_000_000
    assert all(s.get("licence") for s in card["training_data"]["sources"])
    assert all(p.stat().st_size < 30 * 2**20 for p in SHIPPED_LM.iterdir())
    lm = load_causal_lm(SHIPPED_LM, device="cpu")  # load time is measured by `bench lm`
    assert lm.model.config.model_type == "gpt2" and lm.version
