"""TEF heads (paper and causal): forward semantics, files, training, export, evaluation."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from tefviz.cli import main
from tefviz.errors import CheckpointError, InputError
from tefviz.lm import masked_forward
from tefviz.text.filtering import dense_pass
from tefviz.text.keep import causal_keep_mask
from tefviz.text.scorers import get_scorer
from tefviz.text.tef import TEFConfig, TEFHeads, causal_key_weights, tef_checkpoint_lm


def _model(layers=2, width=32, heads=2, vocab=97, ctx=64) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=ctx, n_embd=width, n_layer=layers,
                                      n_head=heads)).eval()


def _heads(variant, layers=2, width=32, **kw) -> TEFHeads:
    torch.manual_seed(1)
    cfg = TEFConfig(variant=variant, n_layer=layers, d_model=width, base="x", train_t=[0.5, 1.0], **kw)
    h = TEFHeads(cfg)
    with torch.no_grad():
        for lin in h.heads:
            lin.weight.normal_(0, 1.0)
            lin.bias.normal_(0, 1.0)
    return h.eval()


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 97, (20,), generator=torch.Generator().manual_seed(2))


def test_causal_tef_at_t1_is_the_dense_model(model, ids):
    out = _heads("causal")(model, ids, 1.0)
    torch.testing.assert_close(out.logits, model(input_ids=ids[None]).logits, atol=1e-5, rtol=1e-4)
    assert out.keys.all(-1).sum() == 0 or out.keys[..., -1, :].all()


def test_causal_tef_masks_follow_the_causal_rule(model, ids):
    h = _heads("causal", recent=1)
    out = h(model, ids, 0.6)
    # the first block's scores come from the embeddings, so they can be recomputed here
    emb = model.transformer.wte(ids) + model.transformer.wpe(torch.arange(ids.numel()))
    logit = h.heads[0](h.norms[0](emb)).squeeze(-1)
    want = causal_keep_mask(logit.exp(), 0.6, sink=True, recent=1)
    assert torch.equal(out.keys[0, 0], want)
    # and the logits are the masked forward pass with exactly those masks
    again = masked_forward(model, ids[None], key_keep=out.keys[:, 0].float())
    torch.testing.assert_close(again.logits, out.logits, atol=1e-5, rtol=1e-4)


def test_paper_tef_zeroes_dropped_tokens_and_keeps_them_dropped(model, ids):
    out = _heads("paper")(model, ids, 0.7)
    tokens = out.tokens[:, 0]
    assert tokens[0].sum() < ids.numel() and tokens[0].any()
    assert not (tokens[1] & ~tokens[0]).any()  # once dropped, dropped in later blocks
    # gates at t = 1: every token active, but the gates still scale the block inputs
    full = _heads("paper")(model, ids, 1.0)
    assert full.tokens.all()
    assert not torch.allclose(full.logits, model(input_ids=ids[None]).logits)
    with_gates = masked_forward(model, ids[None], gates=full.scores[:, 0])
    torch.testing.assert_close(with_gates.logits, full.logits, atol=1e-5, rtol=1e-4)


def test_straight_through_weights_are_hard_forward_and_train_backward():
    logit = torch.randn(2, 12, requires_grad=True)
    w, hard = causal_key_weights(logit, torch.tensor([0.5, 0.9]), True, 0, tau=0.05)
    assert torch.equal(w.detach(), hard.float())
    (w * torch.randn_like(w)).sum().backward()
    assert logit.grad.abs().sum() > 0


def test_tef_scorers_score_and_filter(model, ids):
    for variant in ("paper", "causal"):
        scorer = get_scorer(f"tef_{variant}", heads=_heads(variant))
        s = scorer.score(model, ids)
        assert s.values.shape == (2, ids.numel()) and (s.values > 0).all()
        fp = scorer.filtered(model, ids, s, 0.6)
        assert fp.nll.shape == (ids.numel() - 1,)
        assert 0 < fp.masks.kept_fraction < 1
    with pytest.raises(InputError, match="needs trained TEF heads"):
        get_scorer("tef_causal")
    with pytest.raises(InputError, match="not 'paper'"):
        get_scorer("tef_paper", heads=_heads("causal"))


def test_heads_do_not_fit_another_model(ids):
    with pytest.raises(CheckpointError, match="do not fit"):
        _heads("causal", layers=3)(_model(), ids, 0.5)


def test_heads_round_trip_and_refuse_damage(tmp_path, model, ids):
    h = _heads("causal")
    h.save(tmp_path / "tef")
    back = TEFHeads.load(tmp_path / "tef")
    torch.testing.assert_close(back(model, ids, 0.5).logits, h(model, ids, 0.5).logits)
    (tmp_path / "tef" / "tef.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="corrupt"):
        TEFHeads.load(tmp_path / "tef")
    (tmp_path / "tef" / "tef.json").write_text("{")
    with pytest.raises(CheckpointError, match="not a valid TEF config"):
        TEFHeads.load(tmp_path / "tef")
    with pytest.raises(CheckpointError, match="not a TEF checkpoint"):
        TEFHeads.load(tmp_path)


@pytest.mark.parametrize("variant", ["causal", "paper"])
def test_train_export_and_evaluate_tef(tmp_path, tiny_lm_dir, tiny_corpus, variant, capsys):
    run = tmp_path / "run"
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    import shutil

    shutil.copytree(tiny_lm_dir, ck / "tefviz-lm")
    args = ["train", "tef", "--variant", variant, "--base", str(ck / "tefviz-lm"),
            "--corpus", str(tiny_corpus), "--run-dir", str(run), "--steps", "6", "--batch-size", "2",
            "--block-size", "32"]
    assert main([*args, "--steps", "3"]) == 0
    assert json.loads((run / "state" / "progress.json").read_text())["step"] == 3
    assert main(args) == 0  # resumes to 6
    progress = json.loads((run / "state" / "progress.json").read_text())
    assert progress["step"] == 6 and len(progress["commands"]) == 2
    out = ck / f"tef-{variant}"
    assert main(["export", "tef", "--run-dir", str(run), "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["variant"] == variant and card["training"]["steps"] == 6
    assert tef_checkpoint_lm(out) == (out if variant == "paper" else ck / "tefviz-lm")
    table_path = tmp_path / "eval.json"
    assert main(["eval", "text", "--lm", str(ck / "tefviz-lm"), "--tef", str(out), "--windows", "2",
                 "--block", "32", "--out", str(table_path), "--write-cards"]) == 0
    table = json.loads(table_path.read_text())
    rows = table["scorers"][out.name]["rows"]
    assert [r["t"] for r in rows] == [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5]
    assert rows[-1]["kept_fraction"] < rows[0]["kept_fraction"]
    assert "heldout_table" in json.loads((out / "card.json").read_text())["metrics"]
    assert "dense reference" in capsys.readouterr().out


def test_uniform_baseline_at_t1_matches_the_reference(model, ids):
    scorer = get_scorer("uniform")
    fp = scorer.filtered(model, ids, scorer.score(model, ids), 1.0, __import__(
        "tefviz.text.filtering", fromlist=["DropPolicy"]).DropPolicy("evict"))
    torch.testing.assert_close(fp.nll, dense_pass(model, ids).nll)


def test_train_tef_refuses_bad_settings(tmp_path, tiny_corpus):
    assert main(["train", "tef", "--variant", "causal", "--base", str(tmp_path / "missing"),
                 "--corpus", str(tiny_corpus), "--run-dir", str(tmp_path / "r")]) == 2
    assert main(["train", "tef", "--variant", "causal", "--t", "1.5", "--corpus", str(tiny_corpus),
                 "--run-dir", str(tmp_path / "r")]) == 2


def test_bench_text_prints_and_saves(tef_root, tmp_path, capsys):
    out = tmp_path / "bench_text.json"
    causal = tef_root / "tefviz-lm-tef-causal"
    assert main(["bench", "text", str(tef_root / "tefviz-lm"), "--tef", str(causal),
                 "--tokens", "32", "--repeats", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["scorers"]) == {"uniform", "attention", "tefviz-lm-tef-causal"}
    assert data["scorers"]["uniform"]["filtered_pass_t0.7"]["median_s"] > 0
    assert "filtered pass" in capsys.readouterr().out


def test_tef_runs_on_a_gpt2_small_sized_model():
    """Users with the hub train heads for `gpt2`: the same code on GPT-2 small's shape (random weights)."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()  # 12 layers, 768 wide, 50,257 tokens, 1,024 positions
    ids = torch.randint(0, 50257, (24,))
    for variant in ("causal", "paper"):
        cfg = TEFConfig(variant=variant, n_layer=12, d_model=768, base="gpt2", train_t=[0.5, 1.0])
        heads = TEFHeads(cfg).eval()
        scorer = get_scorer(f"tef_{variant}", heads=heads)
        with torch.no_grad():
            scores = scorer.score(model, ids)
            fp = scorer.filtered(model, ids, scores, 0.7)
        assert scores.values.shape == (12, 24) and fp.nll.shape == (23,)
        assert torch.isfinite(fp.nll).all()


@pytest.mark.parametrize("sink,recent", [(True, 0), (False, 0), (True, 3)])
def test_fast_hard_mask_equals_the_rank_order_rule(sink, recent):
    """The inference path (`tau=None`, one count per query) gives exactly the mask of the
    training path (scatter back from rank order), ties in the scores included."""
    torch.manual_seed(0)
    for n in (1, 2, 17, 64):
        logit = torch.randn(3, n)
        logit[1] = torch.randint(0, 3, (n,)).float()  # many ties
        logit[2] = 0.0  # all tied
        for t in (0.0, 0.3, 0.5, 0.8, 0.99, 1.0):
            tt = torch.tensor([t, t, min(1.0, t + 0.1)])
            _, fast = causal_key_weights(logit, tt, sink, recent, tau=None)
            _, reference = causal_key_weights(logit, tt, sink, recent, tau=0.1)
            assert torch.equal(fast, reference), (n, t)
