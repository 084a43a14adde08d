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
from tefviz.text.scorers.kv_common import head_mean_attention
from tefviz.text.tef import TEFConfig, TEFHeads, causal_key_weights, per_query_key_weights, tef_checkpoint_lm


def _model(layers=2, width=32, heads=2, vocab=97, ctx=64) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_positions=ctx, n_embd=width, n_layer=layers, n_head=heads)
    ).eval()


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
    args = [
        "train",
        "tef",
        "--variant",
        variant,
        "--base",
        str(ck / "tefviz-lm"),
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(run),
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--block-size",
        "32",
    ]
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
    assert (
        main(
            [
                "eval",
                "text",
                "--lm",
                str(ck / "tefviz-lm"),
                "--tef",
                str(out),
                "--windows",
                "2",
                "--block",
                "32",
                "--out",
                str(table_path),
                "--write-cards",
            ]
        )
        == 0
    )
    table = json.loads(table_path.read_text())
    rows = table["scorers"][out.name]["rows"]
    assert [r["t"] for r in rows] == [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5]
    assert rows[-1]["kept_fraction"] < rows[0]["kept_fraction"]
    assert "heldout_table" in json.loads((out / "card.json").read_text())["metrics"]
    assert "dense reference" in capsys.readouterr().out


def test_uniform_baseline_at_t1_matches_the_reference(model, ids):
    scorer = get_scorer("uniform")
    fp = scorer.filtered(
        model,
        ids,
        scorer.score(model, ids),
        1.0,
        __import__("tefviz.text.filtering", fromlist=["DropPolicy"]).DropPolicy("evict"),
    )
    torch.testing.assert_close(fp.nll, dense_pass(model, ids).nll)


def test_train_tef_refuses_bad_settings(tmp_path, tiny_corpus):
    assert (
        main(
            [
                "train",
                "tef",
                "--variant",
                "causal",
                "--base",
                str(tmp_path / "missing"),
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "train",
                "tef",
                "--variant",
                "causal",
                "--t",
                "1.5",
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )


def test_bench_text_prints_and_saves(tef_root, tmp_path, capsys):
    out = tmp_path / "bench_text.json"
    causal = tef_root / "tefviz-lm-tef-causal"
    assert (
        main(
            [
                "bench",
                "text",
                str(tef_root / "tefviz-lm"),
                "--tef",
                str(causal),
                "--tokens",
                "32",
                "--repeats",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
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


# -- causal TEF with per-query features (TEFConfig.features) -----------------------------------


def _feature_heads(features, layers=2, width=32, seed=1, **kw) -> TEFHeads:
    torch.manual_seed(seed)
    h = TEFHeads(
        TEFConfig(
            variant="causal",
            n_layer=layers,
            d_model=width,
            base="x",
            train_t=[0.5, 1.0],
            features=features,
            **kw,
        )
    )
    with torch.no_grad():  # move every feature weight off its initial value
        for lin in h.heads:
            lin.weight.normal_(0, 1.0)
        if hasattr(h, "mix"):
            h.mix.normal_(0, 1.0)
        if hasattr(h, "age_prior"):
            h.age_prior.normal_(0, 1.0)
        for lin in getattr(h, "sharpness", []):
            lin.weight.normal_(0, 0.3)
    return h.eval()


ALL_FEATURES = ["attention", "accumulated", "key_norm", "age", "sharpness"]


def test_old_tef_configs_load_as_the_original_heads(tmp_path, model, ids):
    """A tef.json written before features existed loads as the original heads (no new weights)."""
    h = _heads("causal")
    h.save(tmp_path / "tef")
    cfg = json.loads((tmp_path / "tef" / "tef.json").read_text())
    cfg.pop("features")
    (tmp_path / "tef" / "tef.json").write_text(json.dumps(cfg))
    back = TEFHeads.load(tmp_path / "tef")
    assert back.config.features == [] and not back.config.per_query
    assert set(back.state_dict()) == set(h.state_dict())
    torch.testing.assert_close(back(model, ids, 0.5).logits, h(model, ids, 0.5).logits)
    with pytest.raises(InputError, match="unknown TEF features"):
        TEFConfig(variant="causal", n_layer=2, d_model=32, base="x", train_t=[0.5, 1.0], features=["colour"])
    with pytest.raises(InputError, match="causal TEF variant only"):
        TEFConfig(variant="paper", n_layer=2, d_model=32, base="x", train_t=[0.99], features=["age"])


@pytest.mark.parametrize("sink,recent", [(True, 0), (False, 0), (True, 3)])
def test_per_query_masks_are_the_keep_rule_on_their_scores(sink, recent):
    """The pass's hard mask is exactly what the Text page's keep rule gives on the returned
    scores; training weights are that mask forward and carry gradients back."""
    torch.manual_seed(0)
    for n in (1, 2, 17, 40):
        logit = torch.randn(3, n, n)
        logit[1] = torch.randint(0, 3, (n, n)).float()  # many ties
        logit[2] = 0.0
        for t in (0.0, 0.3, 0.5, 0.8, 1.0):
            tt = torch.tensor([t, t, min(1.0, t + 0.1)])
            w, hard, scores = per_query_key_weights(logit, tt, sink, recent, tau=None)
            assert torch.equal(w, hard.float())
            for b in range(3):
                want = causal_keep_mask(scores[b], float(tt[b]), sink=sink, recent=recent)
                assert torch.equal(hard[b], want), (n, t, b)
            _, hard_train, _ = per_query_key_weights(logit, tt, sink, recent, tau=0.1)
            assert torch.equal(hard_train, hard)
    logit = torch.randn(2, 12, 12, requires_grad=True)
    w, hard, _ = per_query_key_weights(logit, torch.tensor([0.5, 0.8]), True, 0, tau=0.05)
    assert torch.equal(w.detach(), hard.float())
    (w * torch.randn_like(w)).sum().backward()
    assert logit.grad.tril().abs().sum() > 0
    assert logit.grad.triu(1).abs().sum() == 0  # nothing flows from keys a query cannot see


def test_attention_feature_at_initialisation_is_tova(model, ids):
    """Untrained, the attention feature alone ranks each query's keys by its own attention (TOVA)."""
    heads = TEFHeads(
        TEFConfig(
            variant="causal",
            n_layer=2,
            d_model=32,
            base="x",
            train_t=[0.5, 1.0],
            features=["attention", "age"],
        )
    ).eval()
    attn = head_mean_attention(model, ids)  # (L, n, n)
    with torch.no_grad():
        logits = heads.per_query_logits(model, ids[None])[:, 0]
        out = heads(model, ids, 0.6)
    n = ids.numel()
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    torch.testing.assert_close(logits[:, causal], (attn + 1e-6).log()[:, causal])
    for layer in range(2):
        assert torch.equal(out.keys[layer, 0], causal_keep_mask(attn[layer] + 1e-6, 0.6))


def test_feature_tef_is_causal_and_dense_at_t1(model, ids):
    """Query i's scores, kept keys and prediction use tokens 0..i only; at t = 1 it is the dense model."""
    heads = _feature_heads(ALL_FEATURES)
    with torch.no_grad():
        full = heads(model, ids, 1.0)
        torch.testing.assert_close(full.logits, model(input_ids=ids[None]).logits, atol=1e-5, rtol=1e-4)
        changed = ids.clone()
        changed[12:] = (changed[12:] + 5) % 97
        a, b = heads(model, ids, 0.6), heads(model, changed, 0.6)
        la, lb = heads.per_query_logits(model, ids[None]), heads.per_query_logits(model, changed[None])
    assert torch.equal(a.keys[:, 0, :12, :12], b.keys[:, 0, :12, :12])
    causal = torch.ones(12, 12, dtype=torch.bool).tril()
    torch.testing.assert_close(la[:, 0, :12, :12][:, causal], lb[:, 0, :12, :12][:, causal])
    torch.testing.assert_close(a.logits[0, :12], b.logits[0, :12], atol=1e-5, rtol=1e-4)
    assert not torch.equal(a.keys, b.keys)  # and the later tokens do change what later queries keep
    # the logits are the masked forward pass with exactly those masks
    again = masked_forward(model, ids[None], key_keep=a.keys[:, 0])
    torch.testing.assert_close(again.logits, a.logits, atol=1e-5, rtol=1e-4)


def test_feature_tef_scorer_scores_per_query_and_round_trips(tmp_path, model, ids):
    heads = _feature_heads(ALL_FEATURES, recent=2)
    scorer = get_scorer("tef_causal", heads=heads)
    s = scorer.score(model, ids)
    n = ids.numel()
    assert s.values.shape == (2, n, n) and s.per_query and (s.values.triu(1) == 0).all()
    fp = scorer.filtered(model, ids, s, 0.6)
    # the keep rule on the scores (the Text page's strip) reproduces the pass's masks
    assert torch.equal(fp.masks.keys, s.causal_ranking.mask(0.6, sink=True, recent=2))
    assert 0 < fp.masks.kept_fraction < 1
    heads.save(tmp_path / "tef")
    assert json.loads((tmp_path / "tef" / "tef.json").read_text())["features"] == ALL_FEATURES
    back = TEFHeads.load(tmp_path / "tef")
    torch.testing.assert_close(back(model, ids, 0.6).logits, heads(model, ids, 0.6).logits)


def test_train_feature_tef_with_the_next_token_objective(tmp_path, tiny_lm_dir, tiny_corpus, capsys):
    """`python -m tefviz.train.tef` trains every feature weight, records its own command, exports
    a checkpoint that `eval text` runs, and refuses to resume with another feature set."""
    from safetensors.torch import load_file

    from tefviz.train.tef import main as train_main

    run = tmp_path / "run"
    args = [
        "--base",
        str(tiny_lm_dir),
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(run),
        "--features",
        "age,attention,sharpness,key_norm,accumulated",
        "--objective",
        "ce",
        "--t-max",
        "0.9",
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--block-size",
        "32",
        "--save-every",
        "2",
        "--eval-batches",
        "1",
    ]
    train_main(args)
    state = load_file(str(run / "state" / "heads.safetensors"))
    assert state["mix"].shape == (2, 3) and not torch.equal(state["mix"][:, 0], torch.ones(2))
    assert state["age_prior"].abs().sum() > 0 and state["sharpness.1.weight"].abs().sum() > 0
    progress = json.loads((run / "state" / "progress.json").read_text())
    assert progress["commands"][0].startswith("python -m tefviz.train.tef --base")
    assert "ce" in progress["log"][-1]
    with pytest.raises(InputError, match="feature set"):
        train_main([*args[:7], "age", *args[8:], "--steps", "5"])
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    import shutil

    shutil.copytree(tiny_lm_dir, ck / "tefviz-lm")
    out = ck / "tef-feat"
    assert main(["export", "tef", "--run-dir", str(run), "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["features"] == ALL_FEATURES and card["training"]["config"]["objective"] == "ce"
    assert TEFHeads.load(out).config.train_t == [0.5, 0.9]
    table_path = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                "text",
                "--lm",
                str(ck / "tefviz-lm"),
                "--tef",
                str(out),
                "--windows",
                "2",
                "--block",
                "32",
                "--out",
                str(table_path),
            ]
        )
        == 0
    )
    rows = json.loads(table_path.read_text())["scorers"][out.name]["rows"]
    assert rows[-1]["kept_fraction"] < rows[0]["kept_fraction"] == 1.0


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "phi3"])
def test_feature_tef_runs_and_trains_on_other_families(arch):
    """Per-query features read the real attention and keys of any supported family (grouped-query
    key heads included): t = 1 is the dense model, and gradients reach every feature weight."""
    from tefviz.lm import model_parts
    from tests.lm_zoo import tiny_model

    model = tiny_model(arch).eval()
    parts = model_parts(model)
    heads = _feature_heads(ALL_FEATURES, layers=parts.n_layer, width=parts.d_model)
    ids = torch.randint(0, 128, (1, 24), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        dense = heads(model, ids, 1.0).logits
    torch.testing.assert_close(dense, model(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    heads.train()
    out = heads(model, ids, torch.tensor([0.6]), tau=0.05)
    out.logits.float().logsumexp(-1).sum().backward()
    assert heads.mix.grad.abs().sum() > 0 and heads.age_prior.grad.abs().sum() > 0
    assert heads.sharpness[0].weight.grad.abs().sum() > 0
    assert 0 < float(out.keys.float().mean()) < 1
