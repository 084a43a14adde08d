"""What the Generation page shows, computed without Streamlit: the prompt's tokens cut to leave room
for the new ones, both generations (evicted and dense) with their decoded pieces, the headline
numbers and the per-step rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tefviz.analysis import token_pieces
from tefviz.data.heldout import list_samples, sample_text
from tefviz.generate import evicted
from tefviz.headline import Metric
from tefviz.models import LoadedLM
from tefviz.text.tef import TEFHeads
from tefviz.viz.generate_figures import generated_pieces

INTRO = (
    "The model continues a prompt while its key/value cache is cut back after every token: evicted "
    "entries are really removed, so later tokens never see them, as in a serving system. Beside it, "
    "the dense generation of the same prompt, and the dense model's next-token distribution on the "
    "evicted run's own tokens (per-step KL: what eviction changed)."
)
PROMPT_CHARS = 300  # a sample's prompt: its first ~300 characters
MAX_PROMPT_CHARS = 20_000  # of a typed prompt, the last this many characters are tokenized
OWN = "your own text"
POLICY_LABELS = {"streaming_llm": "StreamingLLM", "h2o": "H2O", "tova": "TOVA", "key_norm": "key norm"}
POLICY_HELP = (
    "StreamingLLM: the first 4 tokens (attention sinks) and the most recent; H2O: the "
    "entries that received the most attention while decoding, half the budget kept for the "
    "most recent; TOVA: the current query's attention; key norm: keys with a low L2 norm; "
    "causal TEF: this project's heads, trained for the chosen model. The first token and the "
    "newest are always kept."
)
LIMITS = {"budget": "cache budget (entries per layer)", "share": "keep share t"}
LIMIT_HELP = (
    "A fixed number of cached entries per layer, or the entries whose scores make up a share t of "
    "the total (the Text page's keep rule)."
)
SHARE_HELP = (
    "Entries are kept, highest score first, while their share of the scores stays within t. 1.0 "
    "keeps every entry."
)
SHOWN_CONTEXT = 40  # prompt tokens shown before the dense run's text
PROMPT_PLACEHOLDER = (
    f"Type or paste a prompt; the last {MAX_PROMPT_CHARS:,} characters, up to the model's "
    "context less the new tokens, are used."
)
STRIP_CAPTION = (
    "Orange: generated tokens; dark red: the first token where the two generations differ; "
    "struck through: tokens no longer in the chosen cache. Hover a token for its position, id, "
    "step and KL."
)


def sample_prompt(text: str, chars: int = PROMPT_CHARS) -> str:
    """The first ~`chars` characters, cut back to the last space so no word is split."""
    if len(text) <= chars:
        return text
    head = text[:chars]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return head[:cut] if cut > chars // 2 else head


def prompt_samples() -> dict[str, tuple[str, str]]:
    """Each shipped held-out sample by name: (title, its first ~PROMPT_CHARS characters)."""
    return {s.name: (s.title, sample_prompt(sample_text(s.name))) for s in list_samples()}


def prompt_label(samples: dict[str, tuple[str, str]], key: str) -> str:
    return f"{samples[key][0]} (held out, first ~{PROMPT_CHARS} characters)" if key in samples else key


def policy_choices(tef_names: list[str]) -> dict[str, str]:
    """The policy picker: the causal TEF heads trained for the model ("tef:<checkpoint>"), then the
    baselines."""
    return {**{f"tef:{name}": f"causal TEF · {name}" for name in tef_names}, **POLICY_LABELS}


def budget_range(context: int) -> tuple[int, int, int]:
    """(lowest, highest, default) cache budget for a model of `context` tokens."""
    hi = max(evicted.SINKS + 3, min(context, 1024))
    return evicted.SINKS + 2, hi, min(32, hi)


def new_tokens_range(context: int) -> tuple[int, int]:
    """(highest, default) number of new tokens."""
    hi = max(9, min(256, context - 8))
    return hi, min(64, context // 2, hi)


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    pieces: list[str]
    cut_chars: int  # characters cut from the front (only the last MAX_PROMPT_CHARS are tokenized)
    cut_tokens: int  # tokens cut from the front to leave room for the new ones

    def cut_note(self, new_tokens: int, context: int) -> str | None:
        """What the page says when the prompt was cut."""
        if not (self.cut_chars or self.cut_tokens):
            return None
        return (
            f"The prompt is cut to its last {len(self.ids):,} tokens"
            + (f" (of the last {MAX_PROMPT_CHARS:,} characters)" if self.cut_chars else "")
            + f": with {new_tokens} new tokens it must fit the model's context of {context:,} tokens."
        )


def prompt_tokens(lm: LoadedLM, text: str, new_tokens: int) -> Prompt:
    """The prompt's last tokens, leaving room for `new_tokens` in the model's context."""
    cut_chars = max(0, len(text) - MAX_PROMPT_CHARS)
    text = text[-MAX_PROMPT_CHARS:] if cut_chars else text
    enc = lm.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, pieces = list(enc["input_ids"]), token_pieces(text, enc["offset_mapping"])
    cut_tokens = max(0, len(ids) - (lm.context_length - new_tokens))
    return Prompt(ids[cut_tokens:], pieces[cut_tokens:], cut_chars, cut_tokens)


def generate_both(
    lm: LoadedLM,
    ids: tuple[int, ...],
    policy: str,
    heads: TEFHeads | None,
    budget: int | None,
    t: float | None,
    new_tokens: int,
    seed: int | None,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """Both generations and their decoded pieces: {"gen", "pieces", "dense_pieces"}."""
    g = evicted.generate_evicted(
        lm.model,
        list(ids),
        policy,
        max_new_tokens=new_tokens,
        budget=budget,
        t=t,
        heads=heads,
        seed=seed,
        progress=progress,
    )
    g.final_logits = None  # not shown; kept out of the cache

    def decode(x: list[int]) -> str:
        return lm.tokenizer.decode(x, clean_up_tokenization_spaces=False)

    tail = list(ids[-8:])
    return {
        "gen": g,
        "pieces": generated_pieces(decode, tail, g.ids),
        "dense_pieces": generated_pieces(decode, tail, g.dense_ids),
    }


def headline_metrics(g: evicted.EvictedGeneration, n0: int) -> list[Metric]:
    """Tokens generated, the final cache against dense, the mean KL and where the runs diverge."""
    steps, n, layers = g.steps, len(g.ids), len(g.kept)
    final, dense_final = steps[-1].cache_bytes, g.dense_cache_bytes[-1]
    finite = [s.kl_to_dense for s in steps if not math.isnan(s.kl_to_dense)]
    mean_kl = sum(finite) / len(finite) if finite else float("nan")
    return [
        Metric("Tokens generated", f"{n}", help=f"After a prompt of {n0} tokens."),
        Metric(
            "Final cache vs dense",
            f"{dense_final / max(final, 1):.1f}x smaller",
            help=f"{final / 1024:,.1f} KB ({steps[-1].cache_entries:,} entries over {layers} layers) "
            f"against {dense_final / 1024:,.1f} KB dense ({layers * (n0 + n - 1):,} entries).",
        ),
        Metric(
            "Mean KL(dense ‖ evicted)",
            f"{mean_kl:.3g} nats",
            help="Per step, the dense model's next-token distribution on the evicted run's own tokens "
            "against the evicted run's: 0 = eviction changed nothing.",
        ),
        Metric(
            "Diverges at step",
            "never" if g.diverged_at is None else f"{g.diverged_at + 1} of {n}",
            help="The first generated token where the evicted run and the dense generation differ.",
        ),
    ]


def layer_label(i: int) -> str:
    return "every layer" if i < 0 else f"layer {i}'s cache"


def dense_entries(g: evicted.EvictedGeneration, n0: int) -> list[int]:
    """Cache entries of the dense run at each step."""
    return [len(g.kept) * (n0 + i) for i in range(len(g.ids))]


def step_rows(result: dict, n0: int) -> list[dict]:
    """One export row per generated step."""
    g, pieces, dense_pieces = result["gen"], result["pieces"], result["dense_pieces"]
    dense = dense_entries(g, n0)
    return [
        {
            "step": i + 1,
            "token": pieces[i],
            "id": s.token,
            "dense_token": dense_pieces[i] if i < len(dense_pieces) else None,
            "cache_entries": s.cache_entries,
            "dense_entries": dense[i],
            "cache_bytes": s.cache_bytes,
            "dense_bytes": g.dense_cache_bytes[i],
            "kl_to_dense": s.kl_to_dense,
            "evicted_positions": sum(len(e) for e in s.evicted),
        }
        for i, s in enumerate(g.steps)
    ]
