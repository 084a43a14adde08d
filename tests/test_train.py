"""The training CLI on the tiny preset: trains, resumes, exports, and runs data-parallel."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from tefviz.cli import main
from tefviz.models import load_causal_lm
from tefviz.train.lm import TrainConfig, lr_at

from .conftest import REPO


def _progress(run_dir):
    return json.loads((run_dir / "state" / "progress.json").read_text())


def test_train_resume_and_export(tmp_path, tiny_corpus):
    run = tmp_path / "run"
    args = [
        "train",
        "lm",
        "--preset",
        "tiny",
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(run),
        "--vocab-size",
        "300",
    ]
    assert main([*args, "--max-steps", "12"]) == 0
    first = _progress(run)
    assert first["step"] == 12 and first["tokens_seen"] == 12 * 8 * 64

    # resuming continues from the saved weights and optimiser state instead of starting over
    assert main([*args, "--max-steps", "40"]) == 0
    second = _progress(run)
    assert second["step"] == 40
    assert second["log"][-1]["valid_loss"] < first["log"][-1]["valid_loss"] - 0.1  # it keeps learning
    opt = torch.load(run / "state" / "optimizer.pt", weights_only=True)
    assert {int(s["step"]) for s in opt["state"].values()} == {40}  # Adam's count carried over

    # the saved run refuses a different architecture rather than half-loading it
    assert main([*args, "--max-steps", "41", "--n-layer", "3"]) == 2

    out = tmp_path / "ck"
    assert main(["export", "lm", "--run-dir", str(run), "--out", str(out), "--preset", "tiny"]) == 0
    with safe_open(out / "model.safetensors", framework="pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())  # noqa: SIM118
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["steps"] == 40
    # both training commands (first run and resume) are quoted; the export command is not
    assert card["training"]["command"].startswith("python -m tefviz train lm --preset tiny")
    assert "--max-steps 12" in card["training"]["command"] and "--max-steps 40" in card["training"]["command"]
    assert "--n-layer 3" not in card["training"]["command"]  # the refused run trained nothing
    assert card["metrics"]["heldout_austen"]["bits_per_byte"] > 0
    assert set(card["metrics"]) >= {"corpus_valid", "corpus_test"}
    lm = load_causal_lm(out, device="cpu")
    assert lm.context_length == 64


def test_missing_corpus_is_a_clear_error(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "lm",
                "--preset",
                "tiny",
                "--corpus",
                str(tmp_path / "none"),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "data build" in capsys.readouterr().err


def test_lr_schedule_follows_the_budget_that_ends_first(tmp_path):
    cfg = TrainConfig(
        tmp_path, tmp_path, lr=1.0, min_lr_frac=0.1, warmup_steps=10, max_steps=1000, max_minutes=10
    )
    assert lr_at(cfg, 0, 0) == pytest.approx(0.1)  # warm-up
    assert lr_at(cfg, 10, 0) == pytest.approx(1.0, abs=1e-3)  # peak, decay just begun
    assert lr_at(cfg, 500, 0) == pytest.approx(0.55)  # half the steps
    assert lr_at(cfg, 20, 300) == pytest.approx(0.55)  # half the time, few steps
    assert lr_at(cfg, 20, 600) == pytest.approx(0.1)  # time is up: fully decayed


@pytest.mark.slow
def test_data_parallel_with_two_cpu_processes(tmp_path, tiny_corpus):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEFVIZ_DEVICE": "cpu"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "tefviz",
        "train",
        "lm",
        "--preset",
        "tiny",
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(run),
        "--vocab-size",
        "300",
        "--max-steps",
        "6",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        _, err = proc.communicate()
        pytest.fail("DDP training hung: " + err[-3000:])
    assert proc.returncode == 0, err[-3000:]
    progress = _progress(run)
    assert progress["step"] == 6
    assert progress["tokens_seen"] == 6 * 8 * 64 * 2  # both ranks' batches counted
    assert progress["commands"][0].startswith("torchrun --nproc-per-node 2 -m tefviz train lm")


def test_bench_lm_prints_and_saves(tiny_lm_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "lm", str(tiny_lm_dir), "--tokens", "32", "--repeats", "2", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert set(saved["forward"]) == {"float32", "bfloat16"} and saved["bf16_speedup"] > 0
    assert "fp32" in capsys.readouterr().out


def test_llama_tiny_trains_exports_and_loads(tmp_path, tiny_corpus):
    run = tmp_path / "llama"
    assert (
        main(
            [
                "train",
                "lm",
                "--arch",
                "llama",
                "--preset",
                "llama-tiny",
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(run),
                "--vocab-size",
                "300",
                "--max-steps",
                "6",
                "--eval-every",
                "3",
            ]
        )
        == 0
    )
    progress = _progress(run)
    assert progress["step"] == 6 and progress["tokens_seen"] == 6 * 8 * 64
    saved = json.loads((run / "state" / "config.json").read_text())
    assert saved["arch"] == "llama" and saved["n_kv_head"] == 2 and saved["extra"]["preset"] == "llama-tiny"
    # a GPT-2 preset cannot be asked to be a Llama
    assert (
        main(
            [
                "train",
                "lm",
                "--arch",
                "llama",
                "--preset",
                "tiny",
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )

    out = tmp_path / "ck"
    assert main(["export", "lm", "--run-dir", str(run), "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_key_value_heads"] < config["num_attention_heads"]
    card = json.loads((out / "card.json").read_text())
    arch = card["architecture"]
    assert arch["class"] == "LlamaForCausalLM" and arch["kv_heads"] == 2 and arch["heads"] == 4
    assert arch["intermediate_size"] == 128 and arch["rope_theta"] == 10000.0 and arch["context"] == 64
    assert card["training"]["preset"] == "llama-tiny"
    assert card["training"]["command"].startswith("python -m tefviz train lm --arch llama")
    lm = load_causal_lm(out, device="cpu")
    assert lm.model.config.model_type == "llama" and lm.context_length == 64


def test_gpt2_run_config_has_no_llama_fields(tmp_path):
    cfg = TrainConfig(tmp_path, tmp_path)
    assert not {"arch", "n_kv_head", "intermediate_size", "rope_theta"} & set(cfg.as_json())
    llama = TrainConfig(tmp_path, tmp_path, arch="llama", n_embd=96, n_head=6, n_kv_head=2)
    assert llama.as_json()["intermediate_size"] == 256  # 8/3 x width, rounded to 32


def test_carry_pack_and_assemble_round_trip(tmp_path, tiny_corpus):
    from tefviz.train.carry import assemble_state, pack_state

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "lm",
                "--preset",
                "llama-tiny",
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(run),
                "--vocab-size",
                "300",
                "--max-steps",
                "2",
                "--eval-every",
                "2",
            ]
        )
        == 0
    )
    files = pack_state(run, tmp_path / "out", max_bytes=60_000)  # small shards force a split
    shards = [f for f in files if f.suffix == ".safetensors"]
    assert len(shards) > 1 and all(f.stat().st_size < 16 * 2**20 for f in files)
    back = assemble_state(tmp_path / "out", tmp_path / "back", tokenizer_dir=run / "tokenizer")
    from safetensors.torch import load_file

    a, b = load_file(run / "state" / "model.safetensors"), load_file(back / "state" / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k].half().float(), b[k]) for k in a)
    # the assembled run resumes (without Adam's moments) and exports
    assert (
        main(
            [
                "train",
                "lm",
                "--preset",
                "llama-tiny",
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(back),
                "--vocab-size",
                "300",
                "--max-steps",
                "3",
                "--eval-every",
                "3",
            ]
        )
        == 0
    )
    assert _progress(back)["step"] == 3
