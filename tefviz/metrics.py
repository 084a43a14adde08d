"""Language-model metrics: per-token loss over long texts, perplexity, bits per byte."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tefviz.device import autocast, device_of
from tefviz.errors import InputError


@dataclass(frozen=True)
class LMScore:
    tokens: int  # predicted tokens
    bytes: int  # UTF-8 bytes those tokens cover
    nll_nats: float  # summed negative log-likelihood

    @property
    def loss(self) -> float:
        return self.nll_nats / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    @property
    def bits_per_byte(self) -> float:
        return self.nll_nats / math.log(2) / max(self.bytes, 1)

    def as_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "bytes": self.bytes,
            "loss": round(self.loss, 5),
            "perplexity": round(self.perplexity, 4),
            "bits_per_byte": round(self.bits_per_byte, 5),
        }


@dataclass(frozen=True)
class TokenPredictions:
    """Per predicted token (positions 1..n-1): its NLL and the model's top-k guesses."""

    nll: torch.Tensor  # (n-1,) nats
    topk_ids: torch.Tensor  # (n-1, k)
    topk_probs: torch.Tensor  # (n-1, k)


@torch.no_grad()
def token_predictions(
    model: torch.nn.Module,
    ids: torch.Tensor,
    block: int,
    stride: int | None = None,
    dtype: torch.dtype = torch.float32,
    batch_size: int = 8,
    topk: int = 0,
    progress: Callable[[float], None] | None = None,
) -> TokenPredictions:
    """NLL and top-k predictions for tokens 1..n-1 of a 1-D id tensor.

    Windows of `block` tokens advance by `stride` (default block/2); each token is
    scored once, in the first window where it has at least block-stride tokens of
    left context (or all it has, near the start).
    """
    stride = max(block // 2, 1) if stride is None else stride
    if block < 2 or not 1 <= stride < block:
        raise InputError(f"need block >= 2 and 1 <= stride < block (got block={block}, stride={stride})")
    n = ids.numel()
    out = torch.zeros(max(n - 1, 0))
    top_i = torch.zeros(max(n - 1, 0), topk, dtype=torch.long)
    top_p = torch.zeros(max(n - 1, 0), topk)
    if n < 2:
        return TokenPredictions(out, top_i, top_p)
    device = device_of(model)
    # bound the logits held at once (~256 MB of fp32): 8 windows for small vocabularies,
    # one at a time for GPT-2-sized ones
    vocab = int(getattr(model.config, "vocab_size", 50_000))
    batch_size = max(1, min(batch_size, (256 * 2**20) // (block * vocab * 4)))
    starts = list(range(0, max(n - block, 0) + 1, stride))
    if starts[-1] + block < n:
        starts.append(n - block)
    jobs = []  # (window start, first target index scored in this window)
    scored_to = 1  # next target position (index into ids) still to score
    for s in starts:
        end = min(s + block, n)
        if end <= scored_to:
            continue
        jobs.append((s, scored_to, end))
        scored_to = end
    for i in range(0, len(jobs), batch_size):
        chunk = jobs[i : i + batch_size]
        width = max(e - s for s, _, e in chunk)
        x = torch.zeros(len(chunk), width, dtype=torch.long)
        for j, (s, _, e) in enumerate(chunk):
            x[j, : e - s] = ids[s:e]
        x = x.to(device)
        with autocast(device, dtype):
            logits = model(input_ids=x).logits
        for j, (s, first, e) in enumerate(chunk):
            # logits at position p predict token p+1; targets first..e-1
            pos = torch.arange(first - 1 - s, e - 1 - s, device=logits.device)
            logp = torch.log_softmax(logits[j, pos].float(), dim=-1)
            tgt = x[j, pos + 1]
            out[first - 1 : e - 1] = -logp.gather(1, tgt[:, None])[:, 0].cpu()
            if topk:
                p, k = logp.exp().topk(topk, dim=-1)
                top_p[first - 1 : e - 1], top_i[first - 1 : e - 1] = p.cpu(), k.cpu()
        if progress:
            progress(min(1.0, (i + len(chunk)) / len(jobs)))
    return TokenPredictions(out, top_i, top_p)


def score_text(
    model: torch.nn.Module,
    tokenizer,
    text: str,
    block: int,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[float], None] | None = None,
) -> LMScore:
    """Perplexity and bits per byte of `text` (every token after the first is predicted)."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    nll = token_predictions(model, ids, block, dtype=dtype, progress=progress).nll
    counts = token_bytes(tokenizer, enc["input_ids"], text, enc["offset_mapping"])
    return LMScore(tokens=int(nll.numel()), bytes=predicted_bytes(counts), nll_nats=float(nll.sum()))


def token_bytes(tokenizer, ids: list[int], text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """The UTF-8 bytes each token stands for, every byte of the text counted once.

    A byte-level BPE (GPT-2's) can split one character into several tokens that share its offsets
    ("é" is two tokens of one byte each): for such tokenizers each token's bytes are read from the
    vocabulary, exactly. Otherwise tokens that share a span split its bytes evenly."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if type(getattr(backend, "decoder", None)).__name__ == "ByteLevel":
        counts = [len(piece) for piece in tokenizer.convert_ids_to_tokens(list(ids))]  # 1 char = 1 byte
        if offsets and sum(counts) == len(text[offsets[0][0] : offsets[-1][1]].encode("utf-8")):
            return counts
    counts: list[int] = []
    last = offsets[0][0] if offsets else 0
    i = 0
    while i < len(offsets):
        j = i
        while j + 1 < len(offsets) and offsets[j + 1][1] <= offsets[i][1]:
            j += 1  # tokens i..j end inside token i's span: they share its bytes
        end = max(offsets[i][1], last)
        size = len(text[last:end].encode("utf-8"))
        share, extra = divmod(size, j - i + 1)
        counts += [share + (k < extra) for k in range(j - i + 1)]
        last = end
        i = j + 1
    return counts


def predicted_bytes(counts: list[int]) -> int:
    """UTF-8 bytes of the predicted tokens (all after the first), from `token_bytes`."""
    return sum(counts[1:])
