"""FFT low-pass (the thesis' "mFFT"): tokens come from the centred spectrum, and the budget is
the side of the low-frequency square kept, fixed or the smallest holding a share p of the energy."""

from __future__ import annotations

import torch

from tefviz.errors import InputError
from tefviz.images.spectral import (
    centred_spectrum,
    lowpass_side_for_energy,
    signed_log_channels,
    square_bounds,
)
from tefviz.images.tokenizers import register
from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, TokenBatch, conv_branch, stages_for


@register
class FFTLowPassTokenizer(ImageTokenizer):
    name = "fft"
    label = "FFT low-pass"
    description = (
        "Tokens from the centred Fourier spectrum; keep the central square of side s "
        "(fixed, or the smallest holding a share p of the energy)."
    )

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__(cfg)
        self.branch = conv_branch(2, cfg.conv_channels, stages_for(cfg.patch), cfg.dim)

    @property
    def step(self) -> int:
        """Crop sides move in steps of two tokens so the square stays centred on the token grid."""
        return 2 * self.cfg.patch

    def allowed_sides(self) -> list[int]:
        return list(range(self.step, self.cfg.image_size + 1, self.step))

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
