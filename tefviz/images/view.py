"""What the Images page shows for one image at one setting, computed without Streamlit so the
benchmark and the tests measure exactly what the page does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tefviz.images.model import ImageClassifier, Selection


@dataclass(frozen=True)
class ImageAnalysis:
    probs_all: np.ndarray  # (classes,) with every token
    probs_now: np.ndarray  # (classes,) at the selection
    tokens_all: int  # tokens entering the encoder with every token (CLS included)
    tokens_now: int  # ... at the selection
    tokens_final: int  # ... after TNT pruning inside the encoder
    scores: np.ndarray | None  # (N,) the tokenizer's scores (gates, explained variance), or None
    keep: np.ndarray  # (N,) kept at the input
    positions: np.ndarray  # (N,) position-table rows (grid cells for spatial tokenizers)
    tnt_importance: np.ndarray | None  # (N,) TNT importance, when the model has TNT heads
    tnt_keep: np.ndarray | None  # (N,) kept after TNT pruning

    @property
    def prediction_all(self) -> int:
        return int(self.probs_all.argmax())

    @property
    def prediction_now(self) -> int:
        return int(self.probs_now.argmax())


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]


@torch.inference_mode()
def analyse_image(model: ImageClassifier, image: np.ndarray, sel: Selection) -> ImageAnalysis:
    """Run one (32, 32) image with every token and at `sel` (one pass when they are the same)."""
    x = as_batch(image)
    full = model(x, Selection())
    now = full if sel == Selection() else model(x, sel)
    scores = now.tokens.scores
    valid = now.tokens.valid
    n = int(valid[0].sum()) if valid is not None else now.tokens.tokens.shape[1]
    return ImageAnalysis(
        probs_all=full.logits[0].float().softmax(-1).cpu().numpy(),
        probs_now=now.logits[0].float().softmax(-1).cpu().numpy(),
        tokens_all=int(full.n_tokens[0]),
        tokens_now=int(now.n_tokens[0]),
        tokens_final=int(now.n_tokens_final[0]),
        scores=None if scores is None else scores[0, :n].float().cpu().numpy(),
        keep=now.keep[0, :n].cpu().numpy(),
        positions=now.tokens.positions[0, :n].cpu().numpy(),
        tnt_importance=None
        if now.tnt_importance is None
        else now.tnt_importance[0, :n].float().cpu().numpy(),
        tnt_keep=None if now.tnt_keep is None else now.tnt_keep[0, :n].cpu().numpy(),
    )


def on_grid(values: np.ndarray, positions: np.ndarray, grid: int, fill: float | bool = 0) -> np.ndarray:
    """Per-token values -> (grid, grid) by each token's grid cell; cells without a token get `fill`."""
    out = np.full(grid * grid, fill, dtype=np.asarray(values).dtype)
    out[positions] = values
    return out.reshape(grid, grid)


def flipped(pred_all: np.ndarray, pred_now: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of evaluation images whose prediction changes at the current setting, split by what
    the change did: broke a correct prediction, fixed a wrong one, or changed one wrong to another."""
    changed = pred_all != pred_now
    was_right = pred_all == labels
    now_right = pred_now == labels
    return {
        "broken": np.flatnonzero(changed & was_right),
        "fixed": np.flatnonzero(changed & now_right),
        "still_wrong": np.flatnonzero(changed & ~was_right & ~now_right),
    }


def montage(images: np.ndarray, columns: int, gap: int = 2, fill: float = 1.0) -> np.ndarray:
    """(n, H, W) images in [0, 1] -> one (rows*(H+gap)-gap, columns*(W+gap)-gap) sheet, row-major,
    separated by `gap` pixels of `fill` (white), for a gallery in a single image."""
    n, h, w = images.shape
    rows = -(-n // columns)
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    return sheet
