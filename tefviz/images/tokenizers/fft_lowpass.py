"""FFT low-pass (the thesis' "mFFT"): tokens come from the centred spectrum, and the budget is
the side of the low-frequency square kept, fixed or the smallest holding a share p of the energy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from tefviz.errors import InputError
from tefviz.images.budget import Budget, Selection
from tefviz.images.figures import FigureSpec, lowpass_figures
from tefviz.images.spectral import (
    centred_spectrum,
    lowpass_side_for_energy,
    signed_log_channels,
    square_bounds,
)
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, TokenBatch, conv_branch, stages_for

if TYPE_CHECKING:
    from tefviz.images.view import ImageAnalysis

SIDE_TABLE = (32, 24, 16, 8)  # the sides `eval images` reports (those below the image size)
ENERGY_TABLE = (0.99, 0.95, 0.9)


def sides_of(cfg: ImageConfig) -> list[int]:
    """Crop sides move in steps of two tokens so the square stays centred on the token grid."""
    return list(range(2 * cfg.patch, cfg.image_size + 1, 2 * cfg.patch))


@TOKENIZERS.register
class FFTLowPassTokenizer(ImageTokenizer):
    name = "fft"
    label = "FFT low-pass"
    description = (
        "Tokens from the centred Fourier spectrum; keep the central square of side s "
        "(fixed, or the smallest holding a share p of the energy)."
    )
    order = 1
    summary = "the FFT tokenizer keeps a low-frequency square"
    budget_title = "Low-pass square"
    reduced = Selection(fft_side=16)

    @classmethod
    def own_budgets(cls, cfg: ImageConfig) -> tuple[Budget, ...]:
        sides = sides_of(cfg)
        return (
            Budget(
                "fft_side",
                "fixed side",
                "side",
                "Side s of the kept square of frequencies",
                "side",
                sides[-2],
                choices=tuple(sides),
                table=tuple(s for s in SIDE_TABLE if s < cfg.image_size),
            ),
            Budget(
                "fft_energy",
                "energy share p",
                "energy p",
                "Energy share p: the smallest square holding at least p of the energy",
                "p",
                0.95,
                0.5,
                1.0,
                0.01,
                table=ENERGY_TABLE,
            ),
        )

    @classmethod
    def training_budget(cls, cfg: ImageConfig, gen: torch.Generator, t_min: float | None = None) -> Selection:
        """A random low-pass side per batch."""
        sides = sides_of(cfg)
        return Selection(fft_side=sides[int(torch.randint(len(sides), (1,), generator=gen))])

    def figures(self, res: ImageAnalysis, image: np.ndarray, sel: Selection) -> list[FigureSpec]:
        side = int(np.sqrt(res.tokens_now - 1)) * self.cfg.patch
        return lowpass_figures(image, side, res.tokens_now - 1)

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.branch = conv_branch(2, cfg.conv_channels, stages_for(cfg.patch), cfg.dim)

    @property
    def step(self) -> int:
        """Crop sides move in steps of two tokens so the square stays centred on the token grid."""
        return 2 * self.cfg.patch

    def allowed_sides(self) -> list[int]:
        return sides_of(self.cfg)

    def sides_for(
        self, images: torch.Tensor, fft_side: int | None = None, fft_energy: float | None = None
    ) -> torch.Tensor:
        b, n = images.shape[0], self.cfg.image_size
        if fft_side is not None and fft_energy is not None:
            raise InputError("choose a fixed low-pass side or an energy share, not both")
        if fft_energy is not None:
            return lowpass_side_for_energy(images[:, 0], fft_energy, self.step)
        side = n if fft_side is None else int(fft_side)
        if side not in self.allowed_sides():
            raise InputError(f"the low-pass side must be one of {self.allowed_sides()}, got {side}")
        return torch.full((b,), side, dtype=torch.long, device=images.device)

    def forward(
        self, images: torch.Tensor, fft_side: int | None = None, fft_energy: float | None = None, **budget
    ) -> TokenBatch:
        sides = self.sides_for(images, fft_side, fft_energy)
        channels = signed_log_channels(centred_spectrum(images[:, 0]))
        b, n, p, g = images.shape[0], self.cfg.image_size, self.cfg.patch, self.cfg.grid
        longest = int((sides.max() // p) ** 2)
        tokens = images.new_zeros(b, longest, self.cfg.dim)
        positions = torch.zeros(b, longest, dtype=torch.long, device=images.device)
        valid = torch.zeros(b, longest, dtype=torch.bool, device=images.device)
        for side in sides.unique().tolist():
            rows = (sides == side).nonzero().squeeze(1)
            lo, hi = square_bounds(n, side)
            crop = channels[rows][..., lo:hi, lo:hi]
            out = self.branch(crop).flatten(2).transpose(1, 2)
            cells = side // p
            first = lo // p
            grid_rows = torch.arange(first, first + cells, device=images.device)
            pos = (grid_rows[:, None] * g + grid_rows[None, :]).flatten()
            tokens[rows, : out.shape[1]] = out
            positions[rows, : out.shape[1]] = pos
            valid[rows, : out.shape[1]] = True
        return TokenBatch(tokens, positions, valid=None if bool(valid.all()) else valid)
