"""The one interface every image tokenizer shares: image batch in, scored tokens out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

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

    images: (B, 1, H, W) in [0, 1]. `budget` holds tokenizer-specific knobs (the FFT crop);
    unknown knobs are ignored so one call can serve every tokenizer.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    scored: ClassVar[bool] = False  # True: scores exist and a threshold t can act on them
    score_name: ClassVar[str] = ""

    def __init__(self, cfg: ImageConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, images: torch.Tensor, **budget) -> TokenBatch:
        raise NotImplementedError

    def grid_positions(self, batch: int, device: torch.device) -> torch.Tensor:
        n = self.cfg.max_tokens
        return torch.arange(n, device=device).expand(batch, n)


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
