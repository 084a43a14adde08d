"""Generation with an evicted KV cache: the cache really shrinks, and what the model computes
equals a full forward pass in which each token saw exactly the keys that were cached when it was
processed."""

from __future__ import annotations

import math

import pytest
import torch

from tefviz.errors import InputError
from tefviz.generate.evicted import POLICIES, generate_evicted
from tefviz.lm import masked_forward, model_parts
from tests.lm_zoo import tiny_model

PROMPT = list(range(5, 25))


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request):
    return tiny_model(request.param)


def test_dense_policy_is_dense_generation(model):
    g = generate_evicted(model, PROMPT, "dense", max_new_tokens=8)
    assert g.ids == g.dense_ids and g.diverged_at is None
    assert max(s.kl_to_dense for s in g.steps) < 1e-6
    assert g.steps[-1].cache_bytes == g.dense_cache_bytes[-1]


def causal_heads(model):
    from tefviz.text.tef import TEFConfig, TEFHeads

    parts = model_parts(model)
    torch.manual_seed(0)
    return TEFHeads(TEFConfig("causal", parts.n_layer, parts.d_model, "tiny", [0.5, 1.0])).eval()


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "dense"])
def test_evicted_cache_equals_a_masked_full_pass(model, policy):
    """Replay: the row of the token fed at step i sees, at layer l, the positions cached at layer
    l after that step's eviction, and itself; the run's final logits must be the replay's."""
    budget, steps = 10, 6
    heads = causal_heads(model) if policy == "tef_causal" else None
    g = generate_evicted(model, PROMPT, policy, max_new_tokens=steps, budget=budget, heads=heads)
    layers, n0 = model_parts(model).n_layer, len(PROMPT)
    seq = PROMPT + g.ids  # every generated token was fed back
    n = len(seq)
    keys = torch.ones(layers, n, n, dtype=torch.bool).tril()
    cached = [set(range(n0)) for _ in range(layers)]
    evicted_any = False
    for i, step in enumerate(g.steps):
        p = n0 + i
        for layer in range(layers):
            evicted_any |= bool(step.evicted[layer])
            cached[layer] -= set(step.evicted[layer])
            row = torch.zeros(n, dtype=torch.bool)
            row[sorted(cached[layer] | {p})] = True
            keys[layer, p] = row
        assert step.cache_entries == sum(len(c) for c in cached)  # after eviction, before feeding
        assert all(len(c) <= budget for c in cached)
        for layer in range(layers):
            cached[layer].add(p)
    assert evicted_any
    replay = masked_forward(model, torch.tensor([seq]), key_keep=keys).logits[0, -1]
    torch.testing.assert_close(g.final_logits, replay.float(), atol=1e-4, rtol=1e-4)
    assert [sorted(c) for c in cached] == g.kept


def test_sinks_and_recent_window_stay_for_streaming_llm(model):
    g = generate_evicted(model, PROMPT, "streaming_llm", max_new_tokens=5, budget=8)
    for kept in g.kept:
        assert kept[:4] == [0, 1, 2, 3] and kept[-4:] == list(range(len(PROMPT) + 1, len(PROMPT) + 5))


def test_threshold_keeps_a_share_and_bad_settings_are_refused(model):
    g = generate_evicted(model, PROMPT, "key_norm", max_new_tokens=4, t=0.5)
    assert g.steps[-1].cache_entries < model_parts(model).n_layer * (len(PROMPT) + 3)
    for kwargs in (
        dict(policy="nope"),
        dict(policy="h2o"),
        dict(policy="h2o", budget=8, t=0.5),
        dict(policy="h2o", budget=3),
        dict(policy="tef_causal", budget=8),
        dict(policy="h2o", budget=8, max_new_tokens=200),
    ):
        with pytest.raises(InputError):
            generate_evicted(model, PROMPT, **{"max_new_tokens": 4, **kwargs})
    with pytest.raises(InputError, match="empty"):
        generate_evicted(model, [], "dense")


def test_seeded_sampling_is_reproducible(model):
    a = generate_evicted(model, PROMPT, "tova", max_new_tokens=6, budget=10, seed=3)
    b = generate_evicted(model, PROMPT, "tova", max_new_tokens=6, budget=10, seed=3)
    assert a.ids == b.ids and a.dense_ids == b.dense_ids


def test_bench_generate_prints_and_saves(tiny_lm_dir, tmp_path, capsys):
    import json

    from tefviz.cli import main

    out = tmp_path / "bench_generate.json"
    assert (
        main(
            [
                "bench",
                "generate",
                str(tiny_lm_dir),
                "--tokens",
                "48",
                "--new-tokens",
                "6",
                "--policies",
                "streaming_llm",
                "key_norm",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert set(data["runs"]) == {"dense", "streaming_llm", "key_norm"}
    assert data["runs"]["key_norm"]["final_cache_bytes"] < data["runs"]["dense"]["final_cache_bytes"]
    assert "tok/s" in capsys.readouterr().out


def feature_heads(model, features):
    from tefviz.text.tef import TEFConfig, TEFHeads

    parts = model_parts(model)
    torch.manual_seed(0)
    config = TEFConfig("causal", parts.n_layer, parts.d_model, "tiny", [0.5, 1.0], features=features)
    return TEFHeads(config).eval()


@pytest.mark.parametrize(
    "features", [["attention"], ["attention", "accumulated", "key_norm", "age", "sharpness"]]
)
def test_feature_heads_start_as_tova_in_decoding(model, features):
    """Heads with per-query features start from the query's attention alone (weight 1, the other
    terms 0): decoding with them must keep exactly what TOVA keeps."""
    tova = generate_evicted(model, PROMPT, "tova", max_new_tokens=8, budget=8)
    tef = generate_evicted(
        model, PROMPT, "tef_causal", max_new_tokens=8, budget=8, heads=feature_heads(model, features)
    )
    assert tef.ids == tova.ids and tef.kept == tova.kept
    assert [s.evicted for s in tef.steps] == [s.evicted for s in tova.steps]


def test_feature_heads_read_the_entries_age(model):
    """A learned recency prior alone (attention weight 0, the newest age bucket highest) keeps the
    most recent entries and the pinned first one: the age feature reaches decoding."""
    heads = feature_heads(model, ["attention", "age"])
    with torch.no_grad():
        heads.mix.zero_()
        heads.age_prior.copy_(
            -torch.arange(heads.age_prior.shape[1], dtype=torch.float32).expand_as(heads.age_prior)
        )
    budget, steps = 8, 6
    g = generate_evicted(model, PROMPT, "tef_causal", max_new_tokens=steps, budget=budget, heads=heads)
    now = len(PROMPT) + steps - 2  # the newest query at the last eviction (then one more is appended)

    def bucket(p: int) -> int:  # the age buckets of TEFHeads: 0, 1, 2-3, 4-7, ...
        return 0 if now == p else int(math.log2(now - p)) + 1

    for kept in g.kept:
        assert kept[0] == 0 and kept[-1] == now + 1 and len(kept) == budget + 1
        gone = set(range(1, now + 1)) - set(kept)
        assert max(bucket(p) for p in kept[1:-1]) <= min(bucket(p) for p in gone)


# --- eval generate: several texts, paired over prompts ---------------------------------------------


def test_prompt_windows_spread_over_the_text_without_overlap():
    from tefviz.errors import InputError
    from tefviz.generate.evaluate import prompt_windows

    ids = list(range(100))
    ws = prompt_windows(ids, 20, 4)
    assert [w[0] for w in ws] == [0, 27, 53, 80] and all(len(w) == 20 for w in ws)
    assert prompt_windows(ids, 30, 1) == [list(range(30))]
    with pytest.raises(InputError, match="fewer than 6 prompts of 20"):
        prompt_windows(ids, 20, 6)


def test_each_policy_is_compared_with_the_best_baseline_over_the_same_prompts():
    from tefviz.generate.evaluate import compare_policies

    def runs(*kls):
        return [{"mean_kl": k, "diverged_at": None} for k in kls]

    c = compare_policies(
        {"tova": runs(0.2, 0.4, 0.1), "h2o": runs(0.3, 0.5, 0.2), "mine": runs(0.1, 0.2, 0.0)},
        ("tova", "h2o"),
    )
    assert c["best"] == "tova"
    assert c["methods"]["tova"]["ratio"] == 1.0
    mine = c["methods"]["mine"]
    assert mine["wins"] == 3 and mine["ratio"] < 0.01  # KL 0 is floored, not a crash
    assert c["methods"]["h2o"]["losses"] == 3 and c["methods"]["h2o"]["high"] > 1


def test_eval_generate_on_a_text_file_with_a_causal_tef(tiny_tef_root, tmp_path, capsys):
    import json

    from tefviz.cli import main
    from tefviz.data.heldout import heldout_text

    text = tmp_path / "notes.txt"
    text.write_text(heldout_text()[30000:34000], encoding="utf-8")
    out = tmp_path / "eval_generate.json"
    args = ["eval", "generate", "--lm", str(tiny_tef_root / "tefviz-lm"), "--text-file", str(text)]
    small = ["--prompts", "2", "--prompt-tokens", "24", "--new-tokens", "4", "--out", str(out)]
    assert main([*args, "--tef", str(tiny_tef_root / "tefviz-lm-tef-causal"), *small]) == 0
    data = json.loads(out.read_text())
    (table,) = data["texts"]
    assert table["name"] == "notes.txt" and data["budget_per_layer"] == 12
    assert set(table["runs"]) == {"streaming_llm", "h2o", "tova", "key_norm", "tefviz-lm-tef-causal"}
    assert all(len(r) == 2 and all(x["mean_kl"] >= 0 for x in r) for r in table["runs"].values())
    assert table["comparison"]["best"] in data["baselines"]
    assert "tefviz-lm-tef-causal" in capsys.readouterr().out
    rc = main([*args, "--tef", str(tiny_tef_root / "tefviz-lm-tef-paper"), *small])
    assert rc == 2 and "only a causal TEF" in capsys.readouterr().err
    rc = main([*args, "--prompts", "5000", "--prompt-tokens", "24", "--new-tokens", "4", "--out", str(out)])
    assert rc == 2 and "fewer than 5000 prompts" in capsys.readouterr().err
