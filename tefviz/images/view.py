"""What the Images page shows for one image at one setting, computed without Streamlit so the
benchmark and the tests measure exactly what the page does."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from tefviz.data.fashion_mnist import CLASSES
from tefviz.images.figures import FigureSpec, on_grid
from tefviz.images.model import ImageClassifier, Selection
from tefviz.images.spectral import explained_variance, oriented_svd, square_energy_fractions
from tefviz.images.tokenizers import TOKENIZERS
from tefviz.viz.image_figures import probabilities_figure

__all__ = [
    "FLIP_GROUPS",
    "ImageAnalysis",
    "Metric",
    "analyse_image",
    "checkpoint_labels",
    "class_gallery_png",
    "flip_gallery",
    "flipped",
    "grey_image_bytes",
    "headline_metrics",
    "input_notes",
    "main_figures",
    "montage",
    "on_grid",
    "page_intro",
    "spectral_summary",
    "subset_position",
    "training_free_view",
]

NOW_LABEL = "at this setting"  # how the page names the current selection


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

    def export(self) -> dict:
        """What the page's download buttons write (JSON-ready)."""

        def listed(a: np.ndarray | None) -> list | None:
            return None if a is None else a.tolist()

        return {
            "classes": list(CLASSES),
            "probabilities_all_tokens": self.probs_all.tolist(),
            "probabilities_now": self.probs_now.tolist(),
            "tokens_now": self.tokens_now,
            "tokens_all": self.tokens_all,
            "tokens_after_tnt": self.tokens_final,
            "scores": listed(self.scores),
            "kept": self.keep.tolist(),
            "tnt_importance": listed(self.tnt_importance),
            "kept_after_tnt": listed(self.tnt_keep),
            "positions": self.positions.tolist(),
        }


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


def main_figures(
    model: ImageClassifier, res: ImageAnalysis, image: np.ndarray, sel: Selection, label: int | None = None
) -> list[FigureSpec]:
    """The page's figures of one image at one setting: the tokenizer's row (what it kept, declared
    by the tokenizer), then the class probabilities (key "probs"; `label`: the true class, if known).
    The page draws them and `bench images` times them: one list for both."""
    probs = FigureSpec(
        "probs",
        lambda: probabilities_figure(CLASSES, res.probs_all, res.probs_now, NOW_LABEL, label),
        "label",
    )
    return [*model.tokenizer.figures(res, image, sel), probs]


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


def page_intro() -> str:
    """The Images page's introduction, naming what each tokenizer keeps (its `summary`)."""
    clauses = "; ".join(c.summary for c in TOKENIZERS.values() if c.summary)
    return (
        "A tokenizer turns a Fashion-MNIST image (28x28, padded to 32x32) into an 8x8 grid of patch tokens "
        f"plus CLS. {clauses[:1].upper() + clauses[1:]}. Move the budget and watch which tokens go and what "
        "the prediction and the accuracy pay."
    )


def checkpoint_labels(configs: Mapping[str, Mapping | None]) -> dict[str, str]:
    """Checkpoint name -> its tokenizer's label ("+ TNT" where it has TNT heads), with the
    checkpoint's name added where two checkpoints would read the same."""

    def base(name: str, cfg: Mapping) -> str:
        tok = TOKENIZERS.get(cfg.get("tokenizer", ""))
        label = tok.label if tok else name
        return f"{label} + TNT" if cfg.get("tnt_layers") else label

    bases = {name: base(name, cfg or {}) for name, cfg in configs.items()}
    seen = Counter(bases.values())
    return {name: f"{b} ({name})" if seen[b] > 1 else b for name, b in bases.items()}


def grey_image_bytes(image: np.ndarray, scale: int = 1, format: str = "PNG") -> bytes:
    """A greyscale array in [0, 1] (clipped), each pixel repeated `scale` x `scale`, encoded once:
    the page shows the bytes as they are instead of encoding the array again on every rerun of
    every session. JPEG for photos, PNG (lossless) for the model's 32x32 inputs."""
    grey = np.kron(np.clip(image, 0, 1), np.ones((scale, scale))) if scale > 1 else np.clip(image, 0, 1)
    out = io.BytesIO()
    Image.fromarray((grey * 255).round().astype(np.uint8)).save(out, format=format)
    return out.getvalue()


def class_gallery_png(x: torch.Tensor, y: torch.Tensor, cls: int, columns: int = 20) -> bytes:
    """The subset images of class `cls` (x: (n, 1, 32, 32) model input, cropped to 28x28) as one
    PNG sheet, row by row, upscaled 2x."""
    members = np.flatnonzero(y.numpy() == cls)
    return grey_image_bytes(montage(x[members, 0, 2:30, 2:30].numpy(), columns=columns), 2)


def training_free_view(
    image: np.ndarray, original: np.ndarray | None, size: int = 128
) -> tuple[torch.Tensor, str, str]:
    """What the training-free views study, how the page names it, and its digest (a cache key): the
    picture itself when it has more detail than the model input (its centre square resized to
    size x size), else the input."""
    what = f"picture (greyscale, centre square resized to {size}x{size})"
    if original is None or min(original.shape) <= image.shape[0]:
        view, what = np.ascontiguousarray(image), "model input"
    else:
        side = min(original.shape)
        top, left = (original.shape[0] - side) // 2, (original.shape[1] - side) // 2
        crop = (original[top : top + side, left : left + side] * 255).astype(np.uint8)
        view = np.asarray(Image.fromarray(crop).resize((size, size), Image.LANCZOS), dtype=np.float32) / 255
    return torch.from_numpy(view), what, hashlib.sha1(view.tobytes()).hexdigest()


def spectral_summary(view: torch.Tensor) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(even low-pass sides, the energy share inside each, explained variance per singular
    component) of an (n, n) view: what the training-free figures read."""
    sides = list(range(2, view.shape[0] + 1, 2))
    energy = square_energy_fractions(view[None], sides)[0].numpy()
    return sides, energy, explained_variance(oriented_svd(view)[1]).numpy()


@dataclass(frozen=True)
class Metric:
    """One `st.metric` of the page."""

    label: str
    value: str | int
    delta: str | None = None
    color: str = "normal"


def headline_metrics(res: ImageAnalysis, sel: Selection, label: int | None) -> list[Metric]:
    """Tokens kept, the prediction with every token and at the setting, and the true class if known."""
    kept = res.tokens_final if sel.tnt_keep else res.tokens_now
    sure_all, sure_now = f"{res.probs_all.max():.0%} sure", f"{res.probs_now.max():.0%} sure"
    out = [
        Metric("Tokens kept (CLS included)", f"{kept} / {res.tokens_all}"),
        Metric("Prediction, all tokens", CLASSES[res.prediction_all], sure_all, "off"),
        Metric(f"Prediction {NOW_LABEL}", CLASSES[res.prediction_now], sure_now, "off"),
    ]
    if label is not None:
        right = res.prediction_now == label
        out.append(
            Metric(
                "True class",
                CLASSES[label],
                "correct" if right else "wrong",
                "normal" if right else "inverse",
            )
        )
    return out


def input_notes(steps: tuple[str, ...], from_subset: bool) -> list[str]:
    """What the page says under the budget about the input: how it was converted, and that a picture
    from outside Fashion-MNIST gets a guess."""
    notes = ["Converted for the model: " + "; ".join(steps) + "."] if steps else []
    if not from_subset:
        notes.append(
            "The classifiers know only Fashion-MNIST's ten garment classes, seen as light shapes on black: "
            "for other pictures the prediction is a guess, but which patches the tokenizer keeps is still "
            "telling."
        )
    return notes


def subset_position(labels: np.ndarray, i: int) -> tuple[str, int]:
    """(class, index within the class) of subset image i: how the page's picker names it."""
    return CLASSES[labels[i]], int(np.flatnonzero(labels[:i] == labels[i]).size)


FLIP_GROUPS = {
    "broken": "Broken (right with all tokens, wrong now)",
    "fixed": "Fixed (wrong with all tokens, right now)",
    "still_wrong": "Wrong either way, different answer",
}


def flip_gallery(
    flips: dict[str, np.ndarray],
    group: str,
    pred_all: np.ndarray,
    pred_now: np.ndarray,
    labels: np.ndarray,
    limit: int = 24,
) -> list[tuple[int, str]]:
    """The first `limit` subset images of a flip group, each with its caption "true class: prediction
    with every token → prediction now"."""
    return [
        (int(i), f"{CLASSES[labels[i]]}: {CLASSES[pred_all[i]]} → {CLASSES[pred_now[i]]}")
        for i in flips[group][:limit]
    ]
