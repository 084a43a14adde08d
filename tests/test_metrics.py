import math

import pytest
import torch

from tefviz.analysis import MAX_TOKENS, analyse_text, token_pieces
from tefviz.errors import InputError
from tefviz.metrics import score_text, token_nll, token_predictions
from tefviz.models import load_causal_lm


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    return load_causal_lm(tiny_lm_dir, device="cpu", dtype=torch.float32)


def _direct_nll(model, ids):
    logits = model(input_ids=ids[None]).logits[0]
    return torch.nn.functional.cross_entropy(logits[:-1], ids[1:], reduction="none")


def test_single_window_matches_direct_loss(lm):
    ids = torch.randint(0, len(lm.tokenizer), (40,))
    with torch.no_grad():
        ref = _direct_nll(lm.model, ids)
    assert torch.allclose(token_nll(lm.model, ids, block=64), ref, atol=1e-4)


def test_windows_score_every_token_once_with_context(lm):
    block, stride = 64, 32
    ids = torch.randint(0, len(lm.tokenizer), (300,))
    nll = token_nll(lm.model, ids, block=block, stride=stride)
    assert nll.shape == (299,) and torch.all(nll > 0)
    # token 200 is scored in the window starting at 160 (its first with >= 32 tokens of context)
    with torch.no_grad():
        ref = _direct_nll(lm.model, ids[160:224])
    assert torch.isclose(nll[199], ref[200 - 160 - 1], atol=1e-4)


def test_topk_contains_argmax(lm):
    ids = torch.randint(0, len(lm.tokenizer), (50,))
    preds = token_predictions(lm.model, ids, block=64, topk=3)
    with torch.no_grad():
        logits = lm.model(input_ids=ids[None]).logits[0, :-1]
    assert torch.equal(preds.topk_ids[:, 0], logits.argmax(-1))
    assert torch.all(preds.topk_probs[:, 0] >= preds.topk_probs[:, 1])


def test_bits_per_byte_definition(lm):
    text = "It is a truth universally acknowledged."
    s = score_text(lm.model, lm.tokenizer, text, block=64)
    first = lm.tokenizer(text, return_offsets_mapping=True)["offset_mapping"][0][1]
    assert s.bytes == len(text[first:].encode())
    assert math.isclose(s.bits_per_byte, s.nll_nats / math.log(2) / s.bytes)
    assert math.isclose(s.perplexity, math.exp(s.nll_nats / s.tokens))


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(lm, text):
    with pytest.raises(InputError, match="empty"):
        analyse_text(lm, text)


def test_one_token_has_nothing_to_score(lm):
    a = analyse_text(lm, "a")
    assert len(a.ids) == 1 and a.scored == [] and math.isnan(a.perplexity)


@pytest.mark.parametrize(
    "text", ["emoji 🙂👍🏽 mixed", "日本語のテキスト", "עברית מימין לשמאל", "Ünïcödé\n\ttabs"]
)
def test_any_unicode_pieces_cover_the_text(lm, text):
    a = analyse_text(lm, text)
    assert "".join(a.pieces) == text
    assert len(a.pieces) == len(a.ids) == len(a.nll)


def test_long_text_is_truncated_with_counts(lm):
    a = analyse_text(lm, "word " * 30_000)
    assert a.truncated_chars > 0 and len(a.ids) <= MAX_TOKENS and a.windows


def test_token_pieces_handle_shared_offsets():
    # two byte-tokens inside one character share its span: the second gets ''
    assert token_pieces("a🙂", [(0, 1), (1, 2), (1, 2)]) == ["a", "🙂", ""]
