"""What the Attention patterns page shows, computed without Streamlit: the chosen pattern (or two
combined), its mask views and cost, information flow through it, FlexAttention's tiles, and the
pattern applied to a language model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.attention.flex_attention import and_masks, or_masks

from tefviz.attention.bench import IMPLEMENTATIONS, bench_attention
from tefviz.attention.block_masks import BlockTable, block_mask_for, block_table
from tefviz.attention.flow import hops, max_hops, receptive_field
from tefviz.attention.masks import dense_mask, density_image, pattern_cost
from tefviz.attention.on_model import PatternedRun, run_pattern
from tefviz.attention.patterns import PATTERNS, build_pattern
from tefviz.attention.patterns.base import MaskMod
from tefviz.data.heldout import heldout_samples
from tefviz.headline import Metric
from tefviz.lm import model_parts
from tefviz.models import LoadedLM
from tefviz.viz.attention_figures import attention_pair_figure

LENGTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
HEATMAP_CELLS = 256  # up to this length every cell is drawn; beyond, a density image
FLOW_LIMIT = 1024  # receptive field by boolean matrix powers, n^3 per layer
FLEX_BLOCKS = [16, 32, 64, 128]  # FlexAttention tile sides offered; 128 is its default
FLEX_MAX_TILES = 256  # at most this many tiles per side in the tile map
LECTURE_TOKENS = ["GLB", "the", "cat", "is", "very", "sad"]
BENCH_LENGTHS = [512, 1024, 2048, 4096, 8192, 16384]
IMPLS = list(IMPLEMENTATIONS)  # the benchmark's implementations, all chosen at first
NONE = "none"  # the "combine with" choice that combines nothing

INTRO = (
    "Sparse attention lets each token read only some others. Pick a pattern (or combine two), see "
    "which (query, key) cells it allows, how many layers information needs to travel between two "
    "tokens, what it saves, and what it does to a real model's perplexity."
)
FLEX_SHOW_HELP = (
    "Builds the pattern's BlockMask tile band by tile band (about 2 s at 16,384 tokens on a "
    "2-core CPU), then cached."
)
FLEX_BLOCK_HELP = (
    f"FlexAttention's default is 128; sides giving more than {FLEX_MAX_TILES} tiles per side are not offered."
)
HOW_HELP = "or: a cell is allowed by either pattern (Longformer, BigBird); and: by both"
TILES_SPINNER = "Building FlexAttention's BlockMask (about 2 s at 16,384 tokens on a CPU)…"
BENCH_INTRO = (
    "Dense causal SDPA (the baseline) against SDPA with a boolean mask, compiled FlexAttention "
    "with a BlockMask and a block gather, each case in its own process (time and peak memory). "
    "Uses the first pattern above with its parameters at each length."
)


def param_key(pattern: str, name: str, slot: str) -> str:
    """The widget (and URL) key of a pattern parameter; slot "a" is the pattern, "b" the combined one."""
    return f"{slot}_{pattern}_{name}"


# the lecture's two examples: a label and the widget values they set
LECTURES: list[tuple[str, dict]] = [
    (
        "Lecture: window 4 (≈5n cells)",
        {
            "pattern": "sliding",
            "combine": NONE,
            "n": 1024,
            param_key("sliding", "window", "a"): 4,
            param_key("sliding", "causal", "a"): False,
        },
    ),
    (
        "Lecture: cat → GLB → sad",
        {
            "pattern": "sliding",
            "combine": "global",
            "how": "or",
            "n": 16,
            "source": 2,
            "target": 5,
            param_key("sliding", "window", "a"): 2,
            param_key("sliding", "causal", "a"): False,
            param_key("global", "n_global", "b"): 1,
        },
    ),
]


def default_pattern() -> str:
    return "sliding" if "sliding" in PATTERNS else next(iter(PATTERNS))


def pattern_label(name: str) -> str:
    return "nothing" if name == NONE else PATTERNS[name].label


def param_bounds(lo: int, hi: int, kind: str, default: int, n: int) -> tuple[int, int]:
    """(default, highest value) of a number parameter at length n: a length-like setting is offered up
    to 4n (a seed is not a length); the default is clipped into the range."""
    hi = hi if kind == "seed" else min(hi, max(lo, 4 * n))
    return min(max(default, lo), hi), hi


@dataclass(frozen=True)
class PatternChoice:
    """The pattern, its parameters, and the one it is combined with ("none") and how ("or", "and")."""

    pattern: str
    params_a: dict = field(default_factory=dict)
    combine: str = NONE
    params_b: dict = field(default_factory=dict)
    how: str | None = None

    @property
    def key(self) -> str:
        """Names the choice in the page's caches."""
        return repr(
            (
                self.pattern,
                sorted(self.params_a.items()),
                self.combine,
                sorted(self.params_b.items()),
                self.how,
            )
        )

    def mask_mod(self, n: int) -> MaskMod:
        """The combined mask_mod at length n (InputError when a pattern does not fit n)."""
        mod = build_pattern(self.pattern, n, **self.params_a).mask_mod
        if self.combine != NONE:
            other = build_pattern(self.combine, n, **self.params_b).mask_mod
            mod = (or_masks if self.how == "or" else and_masks)(mod, other)
        return mod

    def length_unit(self) -> int:
        """A length both patterns' blocks divide."""
        return max(
            PATTERNS[self.pattern].length_unit(self.params_a),
            PATTERNS[self.combine].length_unit(self.params_b) if self.combine != NONE else 1,
        )


def mask_views(mod: MaskMod, n: int) -> dict:
    """The cost counts, the dense mask (up to HEATMAP_CELLS) or a density image, and the mask and
    largest hop count for information flow (up to FLOW_LIMIT)."""
    out: dict = {"cost": pattern_cost(mod, n).as_dict()}
    if n <= HEATMAP_CELLS:
        out["dense"] = dense_mask(mod, n).numpy()
    else:
        out["density"] = density_image(mod, n, bins=256).numpy()
    if n <= FLOW_LIMIT:
        m = dense_mask(mod, n)
        out["flow_mask"] = m.numpy()
        out["max_hops"] = max_hops(m)
    return out


def _memory(cost: dict) -> str:
    return (
        f"attention FLOPs {cost['dense_gflops']:.2f} → {cost['sparse_gflops']:.2f} GFLOP; score memory "
        f"{cost['score_memory_dense_mb']:.1f} → {cost['score_memory_sparse_mb']:.1f} MB"
    )


def cost_metrics(cost: dict) -> list[Metric]:
    return [
        Metric("Active cells", f"{cost['active_cells']:,}", help=f"of {cost['cells']:,} = n²"),
        Metric("Density", f"{cost['density']:.2%}", help="active cells / n²"),
        Metric("Per token", f"{cost['active_per_token']:.1f} keys"),
        Metric(
            "Saved vs dense",
            f"{cost['saving']:.1%}",
            help=_memory(cost) + " (12 heads x 64, fp16, if materialised)",
        ),
    ]


def cost_caption(cost: dict) -> str:
    return f"For 12 heads of width 64: {_memory(cost)} in fp16. Measured times are below."


def token_labels(n: int) -> list[str] | None:
    """The lecture's words on the first tokens at 16 tokens, else none."""
    return LECTURE_TOKENS + [str(i) for i in range(len(LECTURE_TOKENS), n)] if n == 16 else None


@dataclass(frozen=True)
class FlowView:
    """Information flow from token `src` to `dst`, and the receptive field per layer."""

    reached: bool
    message: str  # markdown: how many hops and through which tokens, or that it never arrives
    path: list[int]
    max_hops: str  # markdown: the largest number of hops between two tokens
    reach: list[float]  # tokens reached per layer
    full: list[float]  # the same for full causal attention

    def rows(self) -> list[dict]:
        """The receptive field's export rows."""
        return [
            {"layers": i + 1, "tokens_reached": r, "full_causal": f}
            for i, (r, f) in enumerate(zip(self.reach, self.full, strict=True))
        ]


def flow_view(views: dict, src: int, dst: int, layers: int, labels: list[str] | None) -> FlowView:
    """Hops from token src to token dst through the mask of `views` (see mask_views), and how many
    tokens each token reaches within 1..layers layers."""
    mask = torch.from_numpy(views["flow_mask"])
    n = mask.shape[0]
    d, path = hops(mask, src, dst)
    name = (lambda i: f"{i} ({labels[i]})") if labels else str
    if d is None:
        message = (
            f"Token {name(src)} can never reach token {name(dst)} through this pattern"
            + (" (information only flows forward in a causal pattern)" if dst < src else "")
            + "."
        )
    else:
        steps = [name(i) for i in path]
        if len(steps) > 13:  # a long path: its ends say enough
            steps = [*steps[:6], "…", *steps[-6:]]
        message = f"{name(src)} reaches {name(dst)} in **{d} hop(s)**: " + " → ".join(steps)
    mh = views["max_hops"]
    largest = f"Largest number of hops between two tokens: **{'never connected' if mh is None else mh}**."
    return FlowView(
        d is not None,
        message,
        path,
        largest,
        receptive_field(mask, layers),
        receptive_field(torch.ones(n, n, dtype=torch.bool).tril(), layers),
    )


def mask_rows(dense: np.ndarray) -> list[dict]:
    return [{"query": int(q), "key": int(k)} for q, k in np.argwhere(dense)]


def density_export(density: np.ndarray, n: int) -> dict:
    return {"n": n, "bins": 256, "density": density.round(5).tolist()}


def density_caption(n: int) -> str:
    return (
        f"{n:,} tokens: each pixel summarises a {n // 256}x{n // 256} tile (share of cells allowed); "
        "the full matrix is never sent to the browser."
    )


def flex_blocks(n: int) -> list[int]:
    """Tile sides giving at most FLEX_MAX_TILES tiles per side and no tile longer than n."""
    fits = [b for b in FLEX_BLOCKS if n / FLEX_MAX_TILES <= b <= n]
    return fits or [min(FLEX_BLOCKS[-1], 1 << (n.bit_length() - 1))]


def nearest_block(current: int | None, blocks: list[int]) -> int | None:
    """A tile side the current length no longer offers moves to the nearest offered one (None: keep)."""
    if current in (None, *blocks):
        return None
    return min(blocks, key=lambda b: abs(b - current))


def tile_metrics(tiles: BlockTable, density: float) -> list[Metric]:
    counts = tiles.counts()
    computed = counts["partial"] + counts["full"]
    return [
        Metric(f"Tiles computed, of {counts['tiles']:,}", f"{computed:,}", help="partial + full tiles"),
        Metric(
            "Partial tiles", f"{counts['partial']:,}", help="the mask_mod is evaluated on each cell inside"
        ),
        Metric("Full tiles", f"{counts['full']:,}", help="computed without evaluating the mask"),
        Metric(
            "Share of dense work",
            f"{tiles.computed_share:.1%}",
            help=f"computed tiles / all tiles; the pattern itself allows {density:.2%} of the cells, "
            "the rest of a partial tile is computed and masked out",
        ),
    ]


def tile_table(key: str, mod: MaskMod, n: int, block: int) -> BlockTable:
    """FlexAttention's tile map of the mask_mod at length n with tiles of block x block tokens (`key`
    names the pattern in block_mask_for's own cache)."""
    return block_table(block_mask_for((key,), mod, n, "cpu", block))


def tiles_export(tiles: BlockTable, n: int, block: int) -> dict:
    return {"n": n, "block": block, "table": tiles.table.tolist()}


def tiles_caption(block: int) -> str:
    return (
        f"FlexAttention works in tiles of {block}x{block} tokens: skipped tiles cost nothing, full "
        "tiles run without evaluating the mask, and partial tiles evaluate the mask_mod on every "
        "cell. The mask is built one band of query tiles at a time, so the n x n matrix is never "
        "materialised (16,384 tokens: +2.6 GB built eagerly by create_block_mask on this CPU, "
        "+24 MB in bands)."
    )


def text_ids(lm: LoadedLM, text: str, unit: int) -> list[int]:
    """The text's tokens, at most one context window, cut to a multiple of the patterns' block `unit`."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][: lm.context_length]
    return ids[: len(ids) - len(ids) % unit]


def layers_fit(chosen: list[int] | None, n_layer: int) -> bool:
    """Whether a choice of layers (None: none yet) fits a model of n_layer layers."""
    return chosen is not None and all(i < n_layer for i in chosen)


def heldout_texts() -> dict[str, str]:
    """The shipped held-out samples by id."""
    return {s["id"]: s["text"] for s in heldout_samples()}


def model_size(lm: LoadedLM) -> tuple[int, int]:
    """(layers, heads) of the model."""
    parts = model_parts(lm.model)
    return parts.n_layer, parts.n_head


def run_on_model(
    lm: LoadedLM,
    ids: list[int],
    mod: MaskMod,
    layers: list[int],
    show: int,
    progress: Callable[[float], None] | None = None,
) -> PatternedRun:
    """The model on `ids` dense and with the pattern applied to `layers`; attention at layer `show`."""
    run = run_pattern(lm.model, torch.tensor(ids, device=lm.device), dense_mask(mod, len(ids)), layers, show)
    if progress is not None:
        progress(1.0)
    return run


def run_metrics(run: PatternedRun, n_text: int) -> list[Metric]:
    return [
        Metric("Perplexity, dense", f"{run.dense_perplexity:,.2f}"),
        Metric(
            "Perplexity, patterned",
            f"{run.patterned_perplexity:,.2f}",
            delta=f"{run.patterned_perplexity / run.dense_perplexity:.2f}x",
            color="inverse",
        ),
        Metric("Tokens", f"{n_text}"),
    ]


def pair_figure(lm: LoadedLM, run: PatternedRun, head: int, ids: list[int]):
    """One head's attention, dense beside patterned, over the text's tokens."""
    toks = [lm.tokenizer.decode([i]) for i in ids]
    return attention_pair_figure(
        run.dense_attention[head].numpy(), run.patterned_attention[head].numpy(), toks
    )


def bench(choice: PatternChoice, lengths: list[int], impls: list[str], progress=None) -> dict:
    """The measured benchmark of the first pattern with its parameters at each length."""
    return bench_attention(sorted(lengths), choice.pattern, choice.params_a, tuple(impls), progress=progress)


def bench_failures(result: dict) -> list[str]:
    """One line per benchmark case that failed."""
    return [f"{r['impl']} at {r['n']} tokens failed: {r['error']}" for r in result["runs"] if "error" in r]
