"""The fixed-budget keep rule (`DropPolicy(budget=True)`, `eval text --budget`): every method keeps
exactly the same number of keys per query, the highest-scoring ones, causally; the TEFs decide the
same way inside their pass; `eval text --budget` compares at kept fractions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tefviz.cli import main
from tefviz.errors import InputError
from tefviz.text.filtering import DropPolicy
from tefviz.text.keep import always_kept, budget_counts, budget_keep_mask
from tefviz.text.scorers import get_scorer
from tefviz.text.tef import TEFConfig, TEFHeads
from tests import test_kv_baselines as kv_baselines

# the tiny GPT-2 and Llama and the 40-token text of tests/test_kv_baselines.py, shared
N = kv_baselines.N

models = kv_baselines.models
ids = kv_baselines.ids


def test_budget_counts_known_answer():
    assert budget_counts(5, 0.5).tolist() == [1, 1, 2, 2, 3]
    assert budget_counts(4, 1.0).tolist() == [1, 2, 3, 4]
    assert budget_counts(3, 0.0).tolist() == [1, 1, 1]  # a query always keeps itself
    f32 = float(torch.tensor(0.8))  # 0.800000011920929: training passes fractions as float32
    assert torch.equal(budget_counts(500, f32), budget_counts(500, 0.8))
    with pytest.raises(InputError):
        budget_counts(3, 1.5)


def test_budget_mask_keeps_the_top_keys_priority_first_ties_recent_first():
    scores = torch.tensor([0.0, 5.0, 1.0, 3.0, 3.0, 2.0])
    keep = budget_keep_mask(scores, 0.5)  # (n, n); query 5 keeps 3: itself, then 5.0, then 3.0 (recent)
    assert keep[5].tolist() == [False, True, False, False, True, True]
    assert keep[3].tolist() == [False, True, False, True, False, False]  # itself and the 5.0
    assert not keep.triu(1).any()  # nothing after the query
    # priority keys (a sink) outrank every score and count against the budget
    sink = always_kept(6, sink=True)
    keep = budget_keep_mask(scores, 0.5, sink)
    assert keep[5].tolist() == [True, True, False, False, False, True]
    # per-query scores: row i is query i's view; nothing after i is read
    per_query = torch.rand(2, N, N)
    keep = budget_keep_mask(per_query, 0.3)
    changed = per_query.clone()
    changed[:, 20:, :] = torch.rand(2, N - 20, N)
    assert torch.equal(budget_keep_mask(changed, 0.3)[:, :20], keep[:, :20])
    assert torch.equal(keep.sum(-1), budget_counts(N, 0.3).expand(2, N))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize(
    "name", ["uniform", "random", "attention", "streaming_llm", "h2o", "tova", "snapkv", "key_norm"]
)
def test_every_baseline_keeps_exactly_the_budget(models, ids, arch, name):
    model = models[arch]
    scorer = get_scorer(name, window=8, kernel=3) if name == "snapkv" else get_scorer(name)
    scores = scorer.score(model, ids)
    for fraction in (0.8, 0.5, 0.3):
        fp = scorer.filtered(model, ids, scores, fraction, DropPolicy("evict", budget=True))
        kept = fp.masks.keys.sum(-1)  # (L, n)
        target = budget_counts(N, fraction).expand_as(kept)
        # H2O always keeps the sink and itself, beyond the budget of the first query or two
        over = (kept - target)[:, 3:] if name == "h2o" else kept - target
        assert (over == 0).all(), (name, fraction)
        assert not fp.masks.keys.triu(1).any() and torch.isfinite(fp.nll).all()


def test_streaming_llm_under_a_budget_is_sinks_plus_the_most_recent(models, ids):
    scorer = get_scorer("streaming_llm")
    fp = scorer.filtered(models["gpt2"], ids, scorer.score(models["gpt2"], ids), 0.5, DropPolicy(budget=True))
    row = fp.masks.keys[0, N - 1]  # query 39 keeps 20: 4 sinks and the 16 most recent
    assert row.nonzero().flatten().tolist() == [0, 1, 2, 3, *range(N - 16, N)]


def test_budget_is_a_rule_of_the_evict_mode():
    with pytest.raises(InputError):
        DropPolicy("skip", budget=True)


@pytest.mark.parametrize("features", [[], ["attention", "accumulated", "key_norm", "age", "sharpness"]])
def test_causal_tef_under_a_budget_keeps_its_top_keys(models, ids, features):
    model = models["llama"]
    torch.manual_seed(2)
    heads = TEFHeads(TEFConfig("causal", 2, 32, "tiny", [0.5, 1.0], features=features))
    with torch.no_grad():
        for h in heads.heads:
            h.weight.normal_(0, 0.5)
    scorer = get_scorer("tef_causal", heads=heads)
    scores = scorer.score(model, ids)
    fp = scorer.filtered(model, ids, scores, 0.5, DropPolicy("evict", budget=True))
    assert torch.equal(fp.masks.keys.sum(-1), budget_counts(N, 0.5).expand(2, N))
    if features:  # per-query scores read from the dense pass: the same keys the budget rule picks
        expected = budget_keep_mask(scores.values, 0.5, always_kept(N, True))
        assert torch.equal(fp.masks.keys, expected)
    if not features:  # the plain heads train under the share rule only
        with pytest.raises(InputError):
            heads(model, ids[None], 0.5, tau=0.05, budget=True)


def test_eval_text_budget_compares_at_kept_fractions(tiny_tef_root, tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text("The quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    out = tmp_path / "eval.json"
    tef = tiny_tef_root / "tefviz-lm-tef-causal"
    paper = tiny_tef_root / "tefviz-lm-tef-paper"
    argv = ["eval", "text", "--lm", str(tiny_tef_root / "tefviz-lm"), "--tef", str(tef), "--tef", str(paper)]
    argv += ["--text-file", str(f), "--windows", "2", "--block", "32", "--out", str(out), "--budget"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "kept=0.8: best baseline" in printed and "kept fraction" in printed and "left out" in printed
    table = json.loads(out.read_text())
    assert table["rule"] == "budget" and "attention (skip)" not in table["scorers"]
    assert Path(paper).name not in table["scorers"]  # the paper's TEF drops whole tokens: no budget
    for group in table["scorers"].values():
        for row in group["rows"]:  # every method keeps the same budget (H2O: +1 for the first queries)
            expected = float((budget_counts(32, row["t"]) / torch.arange(1, 33)).mean())
            assert row["kept_fraction"] == pytest.approx(
                expected, abs=0.03 if "h2o" in group["scorer"] else 1e-3
            )
    assert set(table["comparisons"]) == {"0.8", "0.5"}
    assert tef.name in table["comparisons"]["0.5"]["methods"]


def test_straight_through_top_k_is_the_budget_forward_and_trains_backward(models, ids):
    """Training at fixed kept fractions: the weights are the budget mask forward, and the loss
    reaches every feature weight backward (through keys near each query's boundary)."""
    from tefviz.text.tef import per_query_budget_weights

    logit = torch.randn(2, N, N, requires_grad=True)
    fractions = torch.tensor([0.5, 0.8])
    w, hard, _ = per_query_budget_weights(logit, fractions, True, 0, tau=0.5)
    for b, f in enumerate((0.5, 0.8)):
        assert torch.equal(hard[b], budget_keep_mask(logit.detach()[b], f, always_kept(N, True)))
    torch.testing.assert_close(w.detach(), hard.float())
    (w * torch.randn(2, N, N)).sum().backward()
    assert logit.grad.abs().sum() > 0 and not logit.grad.triu(1).any()  # nothing after the query

    heads = TEFHeads(
        TEFConfig("causal", 2, 32, "tiny", [0.4, 0.9], features=["attention", "accumulated", "age"])
    )
    out = heads(models["llama"], ids[None], torch.tensor([0.5]), tau=0.5, budget=True)
    loss = torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[1:])
    loss.backward()
    assert heads.mix.grad.abs().sum() > 0 and heads.age_prior.grad.abs().sum() > 0


def test_train_at_fixed_budgets_keeps_the_best_and_exports_it(tmp_path, tiny_lm_dir, tiny_corpus):
    from tefviz.train.tef import export_tef
    from tefviz.train.tef import main as train_main

    run = tmp_path / "run"
    args = ["--base", str(tiny_lm_dir), "--corpus", str(tiny_corpus), "--run-dir", str(run)]
    args += ["--features", "attention,accumulated,age", "--objective", "ce", "--budget", "--keep-best"]
    args += ["--t", "0.4", "--t-max", "0.9", "--tau", "0.5", "--steps", "4", "--batch-size", "2"]
    args += ["--block-size", "32", "--save-every", "2", "--eval-batches", "1", "--lr-features", "0.5"]
    train_main(args)
    progress = json.loads((run / "state" / "progress.json").read_text())
    log = progress["log"]
    assert log[0]["step"] == 0 and [e["rule"] for e in log] == ["budget"] * 3  # the start, steps 2 and 4
    best = min(log, key=lambda e: e["valid_loss"])
    assert progress["best"] == {"step": best["step"], "valid_loss": best["valid_loss"]}
    (tmp_path / "tefviz-lm").symlink_to(tiny_lm_dir)
    card = export_tef(run, tmp_path / "tef")
    assert card["training"]["exported"]["best_validation"]["step"] == best["step"]
    from safetensors.torch import load_file

    exported = load_file(str(tmp_path / "tef" / "tef.safetensors"))
    kept = load_file(str(run / "state" / "best_heads.safetensors"))
    assert all(torch.equal(exported[k], kept[k]) for k in kept)
    with pytest.raises(InputError, match="features"):
        train_main([*args[:6], "--budget", "--steps", "1"])  # plain heads cannot train at a budget


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_feature_tef_started_as_h2o_is_h2o_under_a_budget(models, ids, arch):
    """Accumulated attention at weight 1, everything else 0, half of the budget for recent keys:
    the TEF keeps exactly H2O's keys (a known answer for the H2O-started training)."""
    model = models[arch]
    heads = TEFHeads(
        TEFConfig(
            "causal",
            2,
            32,
            "tiny",
            [0.4, 0.9],
            features=["attention", "accumulated", "age"],
            budget_recent=0.5,
        )
    )
    with torch.no_grad():
        heads.mix.copy_(torch.tensor([0.0, 1.0]).expand_as(heads.mix))
    tef = get_scorer("tef_causal", heads=heads)
    h2o = get_scorer("h2o")
    for fraction in (0.8, 0.5, 0.3):
        policy = DropPolicy("evict", budget=True)
        mine = tef.filtered(model, ids, tef.score(model, ids), fraction, policy).masks.keys
        theirs = h2o.filtered(model, ids, h2o.score(model, ids), fraction, policy).masks.keys
        assert torch.equal(mine[:, 3:], theirs[:, 3:]), (
            fraction
        )  # H2O keeps its sink beyond the first budgets
    with pytest.raises(InputError):
        TEFConfig("causal", 2, 32, "tiny", [0.5, 1.0], budget_recent=0.5)  # needs feature heads


def test_a_non_finite_batch_is_skipped_not_applied(tmp_path, tiny_lm_dir, tiny_corpus, monkeypatch):
    """One overflowing batch must not turn every head weight into NaN (it did, before the guard)."""
    import tefviz.train.tef as train

    real = train.tef_loss
    monkeypatch.setattr(
        train, "tef_loss", lambda *a: (lambda loss, info: (loss * float("inf"), info))(*real(*a))
    )
    run = tmp_path / "run"
    args = [
        "--base",
        str(tiny_lm_dir),
        "--corpus",
        str(tiny_corpus),
        "--run-dir",
        str(run),
        "--features",
        "attention,age",
    ]
    args += [
        "--objective",
        "ce",
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--block-size",
        "32",
        "--eval-batches",
        "1",
    ]
    train.main(args)
    from safetensors.torch import load_file

    state = load_file(str(run / "state" / "heads.safetensors"))
    assert all(torch.isfinite(v).all() for v in state.values())
    assert json.loads((run / "state" / "progress.json").read_text())["skipped_steps"] == 2


def test_sharpness_is_bounded_so_scores_stay_finite():
    from tefviz.text.tef import SHARPNESS_MAX

    heads = TEFHeads(TEFConfig("causal", 1, 8, "tiny", [0.4, 0.9], features=["attention", "sharpness"]))
    raw = {"attention": torch.tensor([[0.5, 0.25, 0.25]])}
    age = torch.tensor([2, 1, 0])
    huge = heads.feature_logit(0, raw, age, torch.tensor([[500.0]]))
    bounded = heads.feature_logit(0, raw, age, torch.tensor([[SHARPNESS_MAX]]))
    assert torch.isfinite(huge).all() and torch.equal(huge, bounded)
    small = heads.feature_logit(0, raw, age, torch.tensor([[1.0]]))  # below the bound: exp(s) as before
    torch.testing.assert_close(small, heads.feature_logit(0, raw, age, None) * torch.e)


def test_a_slider_move_reuses_the_budget_ranking():
    """Under a fixed budget the sort runs once per (scores, priority keys); each kept fraction is
    then one comparison, with the same keys as the one-off rule."""
    from tefviz.text.scores import TokenScores

    scores = TokenScores(torch.rand(2, N, N).tril())
    priority = always_kept(N, True, 3)
    ranking = scores.budget_ranking(priority)
    assert scores.budget_ranking(priority.clone()) is ranking  # equal keys: the same ranking
    assert scores.budget_ranking(always_kept(N, True)) is not ranking
    for fraction in (0.9, 0.5, 0.2):
        assert torch.equal(ranking.mask(fraction), budget_keep_mask(scores.values, fraction, priority))
