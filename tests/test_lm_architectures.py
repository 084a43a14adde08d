"""The intervention layer on every supported architecture, against plain `transformers`.

Each check compares `tefviz.lm` with a computation that does not go through it: the plain model
(sdpa, no hooks), the plain model with an explicit 4D mask, or the model's own decoder layers
called one by one in a loop written here (hook-free), on tiny random configs of each family.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from tefviz.errors import InputError
from tefviz.lm import SUPPORTED, Capture, intervene, masked_forward, model_parts
from tests.lm_zoo import ARCHS, tiny_model

N = 24
TOL = dict(atol=1e-5, rtol=0)  # the bar: plain transformers to 1e-5


@pytest.fixture(scope="module", params=ARCHS)
def pair(request):
    """(model under test, an identical plain reference that never goes through tefviz.lm)."""
    return tiny_model(request.param), tiny_model(request.param)


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(1)
    return torch.randint(1, 128, (2, N))


def causal_and(keep: torch.Tensor, model=None) -> torch.Tensor:
    """(B, n, n) key-keep mask -> the 4D boolean mask transformers takes (True = may attend):
    causal (within the model's sliding window, if it has one: an explicit 4D mask replaces
    the one the model would build), the pattern, and each query's own key."""
    n = keep.shape[-1]
    q = torch.arange(n)
    causal = q[:, None] >= q[None, :]
    window = getattr(getattr(model, "config", None), "sliding_window", None)
    if window:
        causal &= (q[:, None] - q[None, :]) < window
    return ((keep & causal) | torch.eye(n, dtype=torch.bool))[:, None]


def test_every_family_is_supported():
    assert set(ARCHS) >= {"gpt2", "llama", "mistral", "qwen2", "gpt_neox", "phi3"}
    assert set(SUPPORTED) == set(ARCHS)


@torch.no_grad()
def test_dense_pass_is_plain_transformers(pair, ids):
    model, plain = pair
    torch.testing.assert_close(masked_forward(model, ids).logits, plain(input_ids=ids).logits, **TOL)
    parts = model_parts(model)
    assert parts.n_layer == 2 and parts.d_model == 32 and parts.context == 128
    assert model.config._attn_implementation == "tefviz"  # installed, yet outside a plan it is sdpa


@torch.no_grad()
def test_evict_masks_equal_an_explicit_4d_mask(pair, ids):
    model, plain = pair
    torch.manual_seed(2)
    keep = torch.rand(2, N, N) > 0.4
    expected = plain(input_ids=ids, attention_mask=causal_and(keep, plain)).logits
    layers = model_parts(model).n_layer
    pairwise = keep[None].expand(layers, -1, -1, -1)
    torch.testing.assert_close(masked_forward(model, ids, key_keep=pairwise).logits, expected, **TOL)
    # the soft (float) path with 0/1 weights is the same computation
    torch.testing.assert_close(masked_forward(model, ids, key_keep=pairwise.float()).logits, expected, **TOL)


@torch.no_grad()
def test_evict_masks_in_query_blocks_equal_an_explicit_4d_mask(pair, ids, monkeypatch):
    """Long texts run the masked attention in blocks of queries (each reads keys only up to its
    last query); blocks of 5 make these 24 tokens take that path."""
    # the module, not the function of the same name that tefviz.lm exports
    intervene_module = importlib.import_module("tefviz.lm.intervene")
    monkeypatch.setattr(intervene_module, "_QUERY_BLOCK", 5)
    key_lengths = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        key_lengths.append(k.shape[2])
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(intervene_module.F, "scaled_dot_product_attention", recording_sdpa)
    model, plain = pair
    torch.manual_seed(3)
    keep = torch.rand(2, N, N) > 0.5
    expected = plain(input_ids=ids, attention_mask=causal_and(keep, plain)).logits
    pairwise = keep[None].expand(model_parts(model).n_layer, -1, -1, -1)
    torch.testing.assert_close(masked_forward(model, ids, key_keep=pairwise).logits, expected, **TOL)
    assert min(key_lengths) == 5 and max(key_lengths) == N  # the first block read 5 keys


@torch.no_grad()
def test_per_key_eviction_equals_a_4d_mask(pair, ids):
    model, plain = pair
    keep = torch.ones(N, dtype=torch.bool)
    keep[[3, 7, 11]] = False
    expected = plain(input_ids=ids, attention_mask=causal_and(keep.expand(2, N, N), plain)).logits
    torch.testing.assert_close(masked_forward(model, ids, key_keep=keep).logits, expected, **TOL)


def _layers_by_hand(model, ids, token_keep, mode):
    """Hook-free reference: the model's own embedding, decoder layers, final norm and head,
    called here one by one; a dropped token is hidden as a key (4D mask) and zeroed on input
    ("zero") or passed through unchanged ("skip")."""
    base = model.base_model
    parts = model_parts(model)
    n = ids.shape[1]
    pos = torch.arange(n)[None].expand(ids.shape[0], -1)
    h = parts.embedding(ids)
    if parts.positions == "absolute":
        h = h + base.wpe(pos)
    kwargs = {"position_ids": pos}
    if hasattr(base, "rotary_emb"):
        kwargs["position_embeddings"] = base.rotary_emb(h, pos)
    for layer, block in enumerate(parts.layers):
        w = token_keep[layer]
        mask = causal_and(w[:, None, :].expand(-1, n, -1), model)
        x = h * w[..., None].float() if mode == "zero" else h
        y = block(x, attention_mask=mask, **kwargs)
        y = y[0] if isinstance(y, tuple) else y
        h = torch.where(w[..., None], y, h) if mode == "skip" else y
    return parts.head(parts.final_norm(h))


@pytest.mark.parametrize("mode", ["skip", "zero"])
@torch.no_grad()
def test_skip_and_zero_match_a_hook_free_computation(pair, ids, mode):
    model, plain = pair
    torch.manual_seed(3)
    layers = model_parts(model).n_layer
    token_keep = torch.rand(layers, 2, N) > 0.3
    got = masked_forward(model, ids, token_keep=token_keep, mode=mode).logits
    torch.testing.assert_close(got, _layers_by_hand(plain, ids, token_keep, mode), **TOL)
    # and the reference itself is right: with nothing dropped it is the plain model
    full = torch.ones(layers, 2, N, dtype=torch.bool)
    torch.testing.assert_close(_layers_by_hand(plain, ids, full, mode), plain(input_ids=ids).logits, **TOL)


@torch.no_grad()
def test_captured_qkv_reproduce_the_layers_attention_output(pair, ids):
    model, _ = pair
    parts = model_parts(model)
    attn = next(m for m in parts.layers[1].modules() if type(m).__name__.endswith("Attention"))
    seen = []
    hook = attn.register_forward_hook(lambda m, a, out: seen.append(out[0]))
    capture = Capture(qkv=True, weights=True, layers=frozenset({1}))
    try:
        with intervene(model, None, capture):
            logits = model(input_ids=ids).logits
    finally:
        hook.remove()
    rec = capture.records[1]
    b, h, n, d = rec.query.shape
    assert (h, d) == (parts.n_head, parts.head_dim) and rec.key.shape == rec.query.shape  # GQA repeated
    scores = rec.query @ rec.key.transpose(-1, -2) * d**-0.5
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    if getattr(model.config, "sliding_window", None):
        q = torch.arange(n)
        causal &= (q[:, None] - q[None, :]) < model.config.sliding_window
    probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
    torch.testing.assert_close(probs, rec.weights, **TOL)
    out = (probs @ rec.value).transpose(1, 2)
    torch.testing.assert_close(out, rec.output, **TOL)
    # what was captured is what the layer used: its output projection gives the module's output
    proj = getattr(attn, "o_proj", None) or getattr(attn, "c_proj", None) or attn.dense
    torch.testing.assert_close(proj(out.reshape(b, n, h * d)), seen[0], **TOL)
    torch.testing.assert_close(logits, masked_forward(model, ids).logits, **TOL)  # capturing changes nothing


@torch.no_grad()
def test_replacement_embedding_leaves_the_model_alone(pair, ids):
    model, plain = pair
    parts = model_parts(model)
    before = parts.embedding.weight.clone()
    same = masked_forward(model, ids, embedding=parts.embedding.weight.detach().clone()).logits
    torch.testing.assert_close(same, plain(input_ids=ids).logits, **TOL)
    other = masked_forward(model, ids, embedding=torch.randn_like(before)).logits
    assert not torch.allclose(other, same)
    assert torch.equal(parts.embedding.weight, before)


def test_interventions_are_per_thread(pair, ids):
    """A dense pass in another thread, while this one holds an eviction plan, is untouched."""
    import threading

    model, plain = pair
    keep = torch.zeros(N, dtype=torch.bool)
    results = {}
    started, finish = threading.Event(), threading.Event()

    def dense_elsewhere():
        started.wait()
        with torch.no_grad():
            results["dense"] = model(input_ids=ids).logits
        finish.set()

    t = threading.Thread(target=dense_elsewhere)
    t.start()
    from tefviz.lm.forward import StaticPlan

    plan = StaticPlan(keep[None, None, None].expand(2, 2, 1, N), None, None, "skip")
    with torch.no_grad(), intervene(model, plan):
        started.set()
        finish.wait(30)
        evicted = model(input_ids=ids).logits
    t.join()
    torch.testing.assert_close(results["dense"], plain(input_ids=ids).logits, **TOL)
    assert not torch.allclose(evicted, results["dense"], atol=1e-3)


def test_unsupported_architecture_names_the_supported_ones():
    from transformers import BertConfig, BertLMHeadModel

    bert = BertLMHeadModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=64,
            is_decoder=True,
        )
    )
    with pytest.raises(InputError, match="gpt2, llama, mistral, qwen2, qwen3, gpt_neox, phi3, phi"):
        masked_forward(bert, torch.zeros(1, 4, dtype=torch.long))


@pytest.mark.parametrize("variant", ["causal", "paper"])
def test_both_tef_variants_train_and_run(pair, ids, variant):
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import get_scorer
    from tefviz.text.tef import TEFConfig, TEFHeads

    model, _ = pair
    parts = model_parts(model)
    cfg = TEFConfig(
        variant=variant,
        n_layer=parts.n_layer,
        d_model=parts.d_model,
        base="tiny",
        train_t=[0.99] if variant == "paper" else [0.5, 1.0],
    )
    heads = TEFHeads(cfg)
    trained = [p for p in heads.parameters()]
    if variant == "paper":
        lm_copy = tiny_model(model.config.model_type).train()
        trained += list(lm_copy.parameters())
    else:
        lm_copy = model
    opt = torch.optim.Adam(trained, lr=1e-2)
    before = [p.detach().clone() for p in heads.parameters()]
    for _ in range(3):
        out = heads(
            lm_copy,
            ids,
            t=torch.tensor([0.6, 0.8]) if variant == "causal" else 0.99,
            tau=0.1 if variant == "causal" else None,
        )
        loss = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        if variant == "paper":
            loss = loss + 0.01 * out.scores.mean()
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in heads.parameters())
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, heads.parameters(), strict=True))
    lm_copy.eval()
    heads.eval()
    scorer = get_scorer(f"tef_{variant}", heads=heads)
    with torch.no_grad():
        scores = scorer.score(lm_copy, ids[0])
        policy = DropPolicy("zero" if variant == "paper" else "evict")
        passed = scorer.filtered(lm_copy, ids[0], scores, 0.5, policy)
    assert torch.isfinite(passed.nll).all() and passed.nll.numel() == N - 1


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_text_cli_runs_on_a_tiny_checkpoint_of_each_family(arch, tmp_path, capsys):
    """The acceptance command: `python -m tefviz eval text --lm DIR --windows 1 --block 64` on a
    tiny random checkpoint saved with the shipped tokenizer."""
    import json

    from tefviz.cli import main
    from tests.lm_zoo import save_tiny

    d = save_tiny(arch, tmp_path / f"tiny-{arch}")
    out = tmp_path / "eval.json"
    main(["eval", "text", "--lm", str(d), "--windows", "1", "--block", "64", "--out", str(out)])
    table = json.loads(out.read_text())
    assert {"uniform (evict)", "random (evict)", "attention (evict)"} <= set(table["scorers"])
    assert table["reference"]["block"] == 64
    rows = [r for g in table["scorers"].values() for r in g["rows"]]
    assert rows and all(r["perplexity"] > 1 for r in rows)


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "phi3", "qwen2"])
def test_hub_cache_path_loads_each_family(arch, tmp_path, monkeypatch):
    """The Hugging Face loading path, offline: a tiny model in a local hub cache, loaded by name."""
    import huggingface_hub.constants

    from tefviz.models import load_causal_lm
    from tests.lm_zoo import save_tiny

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / f"models--tefviz-test--tiny-{arch.replace('_', '-')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    save_tiny(arch, repo / "snapshots" / commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = load_causal_lm(f"tefviz-test/tiny-{arch.replace('_', '-')}", device="cpu")
    assert lm.source == "hub" and lm.model.config.model_type == arch
    ids = torch.tensor(lm.tokenizer("It is a truth universally acknowledged.")["input_ids"])
    keep = torch.ones(ids.numel(), dtype=torch.bool)
    keep[2] = False
    with torch.no_grad():
        dense = masked_forward(lm.model, ids).logits
        evicted = masked_forward(lm.model, ids, key_keep=keep).logits
    assert not torch.allclose(dense[0, 3:], evicted[0, 3:])


@pytest.mark.parametrize("variant", ["causal", "paper"])
def test_train_tef_cli_on_a_llama_checkpoint(variant, tmp_path, tiny_corpus):
    """`train tef --base DIR` and `export tef` on a Llama-architecture checkpoint; the exported
    heads load and score beside their LM as the Text page loads them."""
    import json

    from tefviz.cli import main
    from tefviz.models import load_causal_lm
    from tefviz.text.scorers import get_scorer
    from tefviz.text.tef import TEFHeads, tef_checkpoint_lm
    from tests.lm_zoo import save_tiny

    ck = tmp_path / "checkpoints"
    base = save_tiny("llama", ck / "tiny-llama")
    run = tmp_path / f"run-{variant}"
    assert (
        main(
            [
                "train",
                "tef",
                "--variant",
                variant,
                "--base",
                str(base),
                "--corpus",
                str(tiny_corpus),
                "--run-dir",
                str(run),
                "--steps",
                "3",
                "--batch-size",
                "2",
                "--block-size",
                "32",
            ]
        )
        == 0
    )
    out = ck / f"tiny-llama-tef-{variant}"
    assert main(["export", "tef", "--run-dir", str(run), "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["architecture"]["base_architecture"] == "llama"
    lm_dir = tef_checkpoint_lm(out)
    assert lm_dir == (out if variant == "paper" else base)
    lm = load_causal_lm(lm_dir, device="cpu", dtype=torch.float32)
    assert lm.model.config.model_type == "llama"
    heads = TEFHeads.load(out, "cpu")
    ids = torch.tensor(lm.tokenizer("It is a truth universally acknowledged.")["input_ids"])
    scores = get_scorer(f"tef_{variant}", heads=heads).score(lm.model, ids)
    assert scores.values.shape[-1] == ids.numel()


def test_a_copied_model_is_intervenable_and_independent(pair, ids):
    import copy

    model, plain = pair
    masked_forward(model, ids)  # installed
    twin = copy.deepcopy(model)
    keep = torch.zeros(N, dtype=torch.bool)
    with torch.no_grad():
        evicted = masked_forward(twin, ids, key_keep=keep).logits
        torch.testing.assert_close(masked_forward(twin, ids).logits, plain(input_ids=ids).logits, **TOL)
    assert not torch.allclose(evicted, plain(input_ids=ids).logits, atol=1e-3)
