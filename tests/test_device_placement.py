"""Every component follows the model's device, checked without a GPU.

CI has no GPU, so a component left on the CPU beside a CUDA model (the TEF heads once were) is
invisible to it. PyTorch's `meta` device stands in for the GPU: the device policy is pointed at
it (TEFVIZ_DEVICE=meta), every page's and command's pipeline is run through the same loaders the
app and the CLI use, and a CPU tensor meeting a meta one raises "not on the expected device
meta" / "same device". Meta tensors hold no data, so a pipeline may stop later at the first
data-dependent step (copying a result to the CPU, `.item()`); that is expected and allowed, a
device mismatch before it is not.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

MISMATCH = re.compile(r"expected device|same device|different from other tensors|device type", re.I)
META = torch.device("meta")


def reaches_the_end_on_meta(fn, must_run: torch.nn.Module | None = None) -> None:
    """Run fn; fail if any tensor met one on another device, or if `must_run` (the component under
    test) never ran: a pipeline that stopped early on a data-dependent step tested nothing."""
    ran = []
    hook = must_run.register_forward_hook(lambda *_: ran.append(1)) if must_run is not None else None
    try:
        fn()
    except Exception as e:  # any error is inspected; the device ones fail the test
        message = f"{type(e).__name__}: {e}"
        assert not MISMATCH.search(message), f"a component was left off the model's device: {message}"
    finally:
        if hook is not None:
            hook.remove()
    assert must_run is None or ran, f"{type(must_run).__name__} never ran: the check tested nothing"


@pytest.fixture()
def meta_policy(monkeypatch):
    monkeypatch.setenv("TEFVIZ_DEVICE", "meta")
    monkeypatch.setenv("TEFVIZ_DTYPE", "float32")
    # transformers asks, data-dependently, whether position ids pack several sequences before
    # building the causal mask; meta tensors cannot answer, and none of our inputs are packed
    from transformers import masking_utils

    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices", lambda position_ids: None)


def test_the_check_itself_catches_a_component_left_on_the_cpu():
    """The mechanism: a CPU LayerNorm and a CPU Linear on meta input raise a device error."""
    x = torch.randn(2, 8, device=META)
    for module in (torch.nn.LayerNorm(8), torch.nn.Linear(8, 1)):
        with pytest.raises(AssertionError, match="left off"):
            reaches_the_end_on_meta(lambda m=module: m(x))
        reaches_the_end_on_meta(lambda m=module: m.to(META)(x))


def test_policy_loaders_put_the_lm_on_meta(tiny_lm_dir, meta_policy):
    from tefviz.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_dir)
    assert lm.device == META and next(lm.model.parameters()).device == META


@pytest.mark.parametrize("variant", ["causal", "paper"])
def test_tef_scorers_follow_the_model(tiny_tef_root, meta_policy, variant):
    """The Text page's TEF path: heads loaded as the app loads them, run beside a meta LM."""
    from tefviz.models import load_causal_lm
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import get_scorer
    from tefviz.text.tef import TEFHeads, tef_checkpoint_lm
    from tefviz.text.view import ScoredText, filter_text, score_text_tokens

    path = tiny_tef_root / f"tefviz-lm-tef-{variant}"
    lm = load_causal_lm(tef_checkpoint_lm(path))
    scorer = get_scorer(f"tef_{variant}", heads=TEFHeads.load(path))
    last_head = scorer.heads.heads[-1]  # runs only once every block before it has
    reaches_the_end_on_meta(
        lambda: score_text_tokens(lm, scorer, "It is a truth universally acknowledged."), last_head
    )
    ids = torch.arange(12, device=META)
    reaches_the_end_on_meta(lambda: scorer.score(lm.model, ids), last_head)
    reaches_the_end_on_meta(lambda: scorer.filtered(lm.model, ids, None, 0.5, DropPolicy("evict")), last_head)
    if variant == "causal":  # the fixed kept fraction (a cache budget) decides beside the model too
        budget = DropPolicy("evict", budget=True)
        reaches_the_end_on_meta(lambda: scorer.filtered(lm.model, ids, None, 0.5, budget), last_head)
    n = 6
    scored = ScoredText(["a"] * n, list(range(n)), np.ones((2, n), dtype=np.float32), np.zeros(n - 1), 0, 0)
    reaches_the_end_on_meta(lambda: filter_text(lm, scorer, scored, 0.5, DropPolicy("evict")), last_head)


@pytest.mark.parametrize("scorer_name", ["uniform", "random", "attention", "h2o", "streaming_llm", "snapkv"])
def test_baseline_scorers_follow_the_model(tiny_lm_dir, meta_policy, scorer_name):
    from tefviz.models import load_causal_lm
    from tefviz.text.filtering import DropPolicy
    from tefviz.text.scorers import get_scorer

    lm = load_causal_lm(tiny_lm_dir)
    scorer = get_scorer(scorer_name)
    ids = torch.arange(12, device=META)
    for policy in (DropPolicy("evict"), DropPolicy("evict", budget=True)):
        reaches_the_end_on_meta(
            lambda policy=policy: scorer.filtered(lm.model, ids, scorer.score(lm.model, ids), 0.5, policy)
        )


def test_generation_with_an_evicted_cache_follows_the_model(tiny_lm_dir, meta_policy):
    """The Generation page's core: causal TEF heads made on the CPU run beside a meta LM."""
    from tefviz.generate.evicted import generate_evicted
    from tefviz.lm import model_parts
    from tefviz.models import load_causal_lm
    from tefviz.text.tef import TEFConfig, TEFHeads

    lm = load_causal_lm(tiny_lm_dir)
    parts = model_parts(lm.model)
    heads = TEFHeads(TEFConfig("causal", parts.n_layer, parts.d_model, "tefviz-lm", [0.5, 1.0]))
    reaches_the_end_on_meta(
        lambda: generate_evicted(
            lm.model, list(range(1, 20)), "tef_causal", max_new_tokens=4, budget=8, heads=heads, compare=False
        ),
        heads.heads[-1],
    )


def test_language_model_page_follows_the_model(tiny_lm_dir, meta_policy):
    from tefviz.analysis import analyse_text
    from tefviz.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_dir)
    reaches_the_end_on_meta(lambda: analyse_text(lm, "A short text to score."))


def test_attention_pages_follow_the_model(tiny_lm_dir, meta_policy):
    from tefviz.attention.approx_view import compare
    from tefviz.attention.masks import dense_mask
    from tefviz.attention.on_model import qkv_at, run_pattern
    from tefviz.attention.patterns import build_pattern
    from tefviz.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_dir)
    ids = torch.arange(16, device=META)
    mask = dense_mask(build_pattern("sliding", 16, window=4, causal=1).mask_mod, 16)
    reaches_the_end_on_meta(lambda: run_pattern(lm.model, ids, mask, [0], 0))
    q = k = v = torch.randn(16, 8, device=META)
    for method in ("performer", "linformer", "infinity_former"):
        reaches_the_end_on_meta(lambda m=method: compare(q, k, v, m, 8, False))
    reaches_the_end_on_meta(lambda: qkv_at(lm.model, ids, 0))


def test_embeddings_follow_the_model(tiny_lm_dir, meta_policy):
    from tefviz.embeddings.compressors import compress
    from tefviz.embeddings.evaluate import windows_perplexity
    from tefviz.models import load_causal_lm

    lm = load_causal_lm(tiny_lm_dir)
    weight = torch.randn(lm.model.config.vocab_size, lm.model.config.n_embd)  # compressed on the CPU
    for method in ("quantised", "low_rank", "tensor_train"):
        matrix = compress(method, weight).matrix()
        reaches_the_end_on_meta(lambda m=matrix: windows_perplexity(lm.model, [torch.arange(8)], m))


def test_image_models_follow_the_policy(tiny_image_root, meta_policy, tmp_path):
    """The Images page, `eval images` and `bench images` load classifiers through one loader."""
    from tefviz.images.checkpoint import load_image_classifier
    from tefviz.images.model import Selection
    from tefviz.images.view import analyse_image

    shutil.copytree(tiny_image_root, tmp_path / "c")
    image = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    for path in sorted((tmp_path / "c").iterdir()):
        model = load_image_classifier(path)
        assert next(model.parameters()).device == META, f"{path.name} stayed on the CPU"
        # the FFT and exact-SVD tokenizers size their token batch from the data (.item()), which a
        # meta tensor cannot answer: they stop inside; their parameters' device is asserted above
        runs = model.tokenizer if model.cfg.tokenizer in ("svd_tef", "patch") else None
        reaches_the_end_on_meta(lambda m=model: analyse_image(m, image, Selection(t=0.8)), runs)


def test_the_subset_batched_by_kept_count_follows_the_model(tiny_image_root, meta_policy):
    """The worker's job: tokens made once on the model's device, the subset images on the CPU,
    regrouped by kept count. (Meta does not object to a meta index into a CPU tensor, which CUDA
    does: predict moves the order to the CPU for that; this checks the rest of the path.)"""
    from tefviz.images.checkpoint import load_image_classifier
    from tefviz.images.evaluate import classify_subset, eval_inputs, tokenize_batches
    from tefviz.images.model import Selection

    model = load_image_classifier(tiny_image_root / "tefviz-image-svd-tef")
    x = eval_inputs()[0][:8]  # as the worker holds the subset
    sel = Selection(t=0.8)
    tokens = tokenize_batches(model, x, sel.tokenizer_part(), batch=4)
    assert tokens[0].tokens.device == META
    reaches_the_end_on_meta(lambda: classify_subset(model, x, sel, tokens))
