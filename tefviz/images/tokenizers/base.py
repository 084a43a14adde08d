"""The one interface every image tokenizer shares: image batch in, scored tokens out; and what its
consumers need to know about it, declared on the class (budgets, evaluation settings, training
budget, figures, display order), so no page, benchmark or trainer dispatches on its name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from tefviz.images.budget import ALL_TOKENS, Budget, Selection, Setting
from tefviz.images.figures import FigureSpec, input_figure, patch_score_figures

if TYPE_CHECKING:
    from tefviz.images.view import ImageAnalysis

# Fashion-MNIST pixel statistics (train split, after 2-pixel zero padding to 32x32).
PIXEL_MEAN = 0.2601
PIXEL_STD = 0.3417


@dataclass(frozen=True)
class ImageConfig:
    """Everything needed to rebuild a classifier; written to config.json."""

    tokenizer: str
    image_size: int = 32
    patch: int = 4  # token stride in pixels: an (image_size / patch)^2 grid of tokens
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp: int = 256
    classes: int = 10
    conv_channels: int = 8  # SVD-TEF / FFT conv branches: width after the first conv
    tnt_layers: tuple[int, ...] = ()  # TNT importance heads after these encoder blocks
    extra: dict = field(default_factory=dict)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def max_tokens(self) -> int:
        return self.grid * self.grid

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["tnt_layers"] = list(self.tnt_layers)
        return d

    @classmethod
    def from_json(cls, d: dict) -> ImageConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["tnt_layers"] = tuple(known.get("tnt_layers", ()))
        return cls(**known)


@dataclass
class TokenBatch:
    tokens: torch.Tensor  # (B, N, D)
    positions: torch.Tensor  # (B, N) long: rows of the classifier's position table
    scores: torch.Tensor | None = None  # (B, N) >= 0: what the threshold ranks by, or None
    valid: torch.Tensor | None = None  # (B, N) bool; None means every token is real


class ImageTokenizer(nn.Module):
    """Subclasses set the class attributes and implement `forward(images, **budget)`.

    images: (B, 1, H, W) in [0, 1]. `budget` holds tokenizer-specific knobs (the FFT crop, a
    `Selection`'s `knobs`); unknown knobs are ignored so one call can serve every tokenizer.

    What consumers read (override what differs):
    - `budgets(cfg)`: the controls of the token budget (the page's widgets; `table` values for
      `eval images`); by default TNT keep where the model has TNT heads;
    - `eval_settings(cfg)`: every setting of the evaluation table;
    - `training_budget(cfg, gen, t_min)`: the selection of one training batch;
    - `reduced_setting(cfg)`: what `bench images` compares with every token;
    - `figures(res, image, sel)`: the page's figures of one image at one setting;
    - `order`: place in lists (lower first).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    summary: ClassVar[str] = ""  # one clause for the page's introduction ("" leaves it out)
    order: ClassVar[int] = 100  # display order on the page and in lists (lower first)
    scored: ClassVar[bool] = False  # True: scores exist and a threshold t can act on them
    score_name: ClassVar[str] = ""
    gate_penalty: ClassVar[bool] = False  # scores are a learned gate: training adds gate_l1 * mean gate
    tnt_base: ClassVar[bool] = False  # a plain backbone `train images --tnt` may add TNT heads to
    budget_title: ClassVar[str] = "Budget"  # the page's radio between several budgets
    no_budget_note: ClassVar[str] = "This model has no budget and no TNT heads: every token is kept."
    reduced: ClassVar[Selection | None] = None  # bench's reduced setting (None: TNT keep 0.5 if any)
    tnt_table: ClassVar[tuple[float, ...]] = (0.9, 0.7, 0.5, 0.3)

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        raise NotImplementedError

    def grid_positions(self, batch: int, device: torch.device) -> torch.Tensor:
        n = self.cfg.max_tokens
        return torch.arange(n, device=device).expand(batch, n)

    # --- what consumers read -------------------------------------------------------------------
    @classmethod
    def own_budgets(cls, cfg: ImageConfig) -> tuple[Budget, ...]:
        """The tokenizer's own budget controls (none: every token is a token)."""
        return ()

    @classmethod
    def tnt_budget(cls, cfg: ImageConfig) -> Budget | None:
        """TNT keep rate, where the model has TNT heads."""
        if not cfg.tnt_layers:
            return None
        return Budget(
            "tnt_keep",
            "TNT keep",
            "TNT keep",
            f"TNT keep rate after block {cfg.tnt_layers[0] + 1}",
            "keep",
            0.5,
            0.05,
            1.0,
            0.05,
            help="Keep the floor(N x rate) patch tokens the importance head ranks highest; CLS always stays.",
            table=cls.tnt_table,
        )

    @classmethod
    def budgets(cls, cfg: ImageConfig) -> tuple[Budget, ...]:
        """The page's budget controls: the tokenizer's own, else TNT keep where there are TNT heads."""
        own = cls.own_budgets(cfg)
        tnt = cls.tnt_budget(cfg)
        return own if own or tnt is None else (tnt,)

    @classmethod
    def eval_settings(cls, cfg: ImageConfig) -> list[Setting]:
        """Every setting `eval images` reports: all tokens, each own budget's table, TNT keep."""
        out = [ALL_TOKENS] + [s for b in cls.own_budgets(cfg) for s in b.settings()]
        tnt = cls.tnt_budget(cfg)
        return out + (tnt.settings() if tnt else [])

    @classmethod
    def training_budget(cls, cfg: ImageConfig, gen: torch.Generator, t_min: float | None = None) -> Selection:
        """The selection one training batch runs at (every token by default)."""
        return Selection()

    @classmethod
    def reduced_setting(cls, cfg: ImageConfig) -> Selection:
        """The reduced budget `bench images` times beside every token."""
        if cls.reduced is not None:
            return cls.reduced
        return Selection(tnt_keep=0.5) if cfg.tnt_layers else Selection()

    def figures(self, res: ImageAnalysis, image: np.ndarray, sel: Selection) -> list[FigureSpec]:
        """The page's row of figures for `image` at `sel` (`res`: its analysis): TNT's importance
        over the patches where the model has TNT heads, else the input."""
        if res.tnt_importance is None:
            return [input_figure(image, "plain_input")]
        keep = res.tnt_keep if res.tnt_keep is not None else np.ones_like(res.keep)
        return patch_score_figures(
            image,
            res.tnt_importance,
            keep,
            res.positions,
            self.cfg.grid,
            self.cfg.patch,
            "TNT importance",
            sel.t,
        )


class ScoredTokenizer(ImageTokenizer):
    """A tokenizer whose tokens carry scores: a cumulative threshold t or top-k keeps them."""

    scored = True
    top_k_table: ClassVar[tuple[int, ...]] = ()  # the top-k values the evaluation table reports
    t_table: ClassVar[tuple[float, ...]] = (0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.1)

    @classmethod
    def token_count(cls, cfg: ImageConfig) -> int:
        """How many tokens there are to keep (top-k's upper end)."""
        return cfg.max_tokens

    @classmethod
    def own_budgets(cls, cfg: ImageConfig) -> tuple[Budget, ...]:
        n = cls.token_count(cfg)
        return (
            Budget(
                "t",
                "threshold t",
                "t",
                f"Threshold t (cumulative share of the {cls.score_name} kept)",
                "t",
                0.8,
                0.0,
                1.0,
                0.01,
                help="1.0 keeps every token; the top-scored one is always kept.",
                table=cls.t_table,
            ),
            Budget(
                "top_k",
                "top-k",
                "top-k",
                "Keep the top k tokens",
                f"k_{cls.name}",
                n // 2,
                1,
                n,
                table=cls.top_k_table,
            ),
        )


def normalise_pixels(images: torch.Tensor) -> torch.Tensor:
    return (images - PIXEL_MEAN) / PIXEL_STD


def conv_branch(in_ch: int, width: int, stages: int, out_dim: int) -> nn.Sequential:
    """The thesis' branch: [Conv3x3 -> BatchNorm -> LeakyReLU -> PixelUnshuffle(2)] x stages, then
    a 1x1 conv to the token width. Each stage halves the map and multiplies channels by 4."""
    layers: list[nn.Module] = []
    ch = in_ch
    for i in range(stages):
        out = width if i == 0 else ch
        layers += [
            nn.Conv2d(ch, out, 3, padding=1),
            nn.BatchNorm2d(out),
            nn.LeakyReLU(0.1),
            nn.PixelUnshuffle(2),
        ]
        ch = out * 4
    layers.append(nn.Conv2d(ch, out_dim, 1))
    return nn.Sequential(*layers)


def stages_for(patch: int) -> int:
    stages = patch.bit_length() - 1
    if 2**stages != patch:
        raise ValueError(f"the conv tokenizers need a power-of-two patch, got {patch}")
    return stages
