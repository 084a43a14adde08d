import math

import pytest
import torch

from tefviz.analysis import MAX_TOKENS, analyse_text, token_pieces
from tefviz.errors import InputError
from tefviz.metrics import score_text, token_bytes, token_predictions
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
    assert torch.allclose(token_predictions(lm.model, ids, block=64).nll, ref, atol=1e-4)


@pytest.mark.parametrize("n", [64, 65, 300, 321])
def test_windows_score_every_token_with_enough_context(lm, n):
    """Every target t is scored by a direct forward pass over some window [s, s+64) that holds
    it and gives it at least min(t, 32) tokens of context, for lengths that do and do not
    fall on the stride (the last window is appended specially)."""
    block, stride = 64, 32
    ids = torch.randint(0, len(lm.tokenizer), (n,))
    nll = token_predictions(lm.model, ids, block=block, stride=stride).nll
    assert nll.shape == (n - 1,)
    starts = sorted({*range(0, max(n - block, 0) + 1, stride), max(n - block, 0)})
    with torch.no_grad():
        direct = {s: _direct_nll(lm.model, ids[s : s + block]) for s in starts}
    for t in range(1, n):
        candidates = [
            direct[s][t - s - 1] for s in starts if s < t < s + block and t - s >= min(t, block - stride)
        ]
        assert any(torch.isclose(nll[t - 1], c, atol=1e-4) for c in candidates), t


@pytest.mark.parametrize("block, stride", [(64, 64), (64, 100), (64, 0), (1, 1)])
def test_bad_window_settings_are_refused(lm, block, stride):
    with pytest.raises(InputError):
        token_predictions(lm.model, torch.arange(10), block=block, stride=stride)


def test_topk_contains_argmax(lm):
    ids = torch.randint(0, len(lm.tokenizer), (50,))
    preds = token_predictions(lm.model, ids, block=64, topk=3)
    with torch.no_grad():
        logits = lm.model(input_ids=ids[None]).logits[0, :-1]
    assert torch.equal(preds.topk_ids[:, 0], logits.argmax(-1))
    assert torch.all(preds.topk_probs[:, 0] >= preds.topk_probs[:, 1])


def test_bits_per_byte_against_a_hand_computation(lm):
    # "It", " is", ...: the first token is not predicted; the rest cover the bytes after it
    text = "It is a truth universally acknowledged, café."
    ids = torch.tensor(lm.tokenizer(text)["input_ids"])
    first_piece = lm.tokenizer.decode(ids[:1])
    assert text.startswith(first_piece)
    with torch.no_grad():
        nats = _direct_nll(lm.model, ids).sum().item()
    expected_bytes = len(text.encode()) - len(first_piece.encode())
    s = score_text(lm.model, lm.tokenizer, text, block=64)
    assert s.tokens == len(ids) - 1 and s.bytes == expected_bytes
    assert s.bits_per_byte == pytest.approx(nats / math.log(2) / expected_bytes, rel=1e-4)
    assert s.perplexity == pytest.approx(math.exp(nats / (len(ids) - 1)), rel=1e-4)
    a = analyse_text(lm, text)  # the page's numbers agree with the metric's
    assert a.bits_per_byte == pytest.approx(s.bits_per_byte, rel=1e-3)


@pytest.mark.parametrize("text", ["é", "a b", "naïve café", "日本語", "🙂👍🏽", "x\r\ny\rz\n"])
def test_token_bytes_count_every_byte_once(lm, text):
    """A character split into several byte-level tokens shares its offsets; its bytes are counted
    once, over the tokens that carry them."""
    enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    counts = token_bytes(lm.tokenizer, enc["input_ids"], text, enc["offset_mapping"])
    assert len(counts) == len(enc["input_ids"]) and sum(counts) == len(text.encode())
    assert all(c > 0 for c in counts)
    if len(counts) > 1:
        a = analyse_text(lm, text)
        assert a.covered_bytes == sum(counts[1:]) and math.isfinite(a.bits_per_byte)


def test_token_bytes_without_a_byte_level_vocabulary_split_shared_spans():
    class Plain:  # no backend tokenizer: offsets only
        pass

    # "é" split in two tokens with the same span, then "ab" in one
    assert token_bytes(Plain(), [1, 2, 3], "éab", [(0, 1), (0, 1), (1, 3)]) == [1, 1, 2]


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


def test_token_pieces_handle_shared_and_trimmed_offsets():
    # two byte-tokens inside one character share its span: the second gets ''
    assert token_pieces("a🙂", [(0, 1), (1, 2), (1, 2)]) == ["a", "🙂", ""]
    # offsets that trim the leading space still give pieces that cover the text
    assert token_pieces("a b", [(0, 1), (2, 3)]) == ["a", " b"]
