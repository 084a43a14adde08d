"""`python -m tefviz eval images`: the analogue of the thesis' Table 2 on the shipped evaluation
subset (2,000 Fashion-MNIST test images, 200 per class): accuracy, macro-F1 and mean tokens (CLS
included) for every tokenizer at every setting of its budget."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from tefviz.data.fashion_mnist import eval_subset
from tefviz.images.budget import ALL_TOKENS, Selection, Setting
from tefviz.images.model import ClassifierOutput, ImageClassifier, input_keep_mask
from tefviz.images.tokenizers import TOKENIZERS, ImageConfig, TokenBatch

T = TypeVar("T", float, torch.Tensor)


def settings_for(model: ImageClassifier) -> list[Setting]:
    """Every budget setting the table reports for this model (declared by its tokenizer)."""
    return model.tokenizer.eval_settings(model.cfg)


def mean_tokens_over_blocks(cfg: ImageConfig, tokens: T, final: T) -> T:
    """TNT drops tokens inside the encoder: the token count averaged over the encoder blocks (the
    cost that matters) from the count entering it and the count after the TNT layer."""
    layer = cfg.tnt_layers[0] + 1 if cfg.tnt_layers else cfg.depth
    return (tokens * layer + final * (cfg.depth - layer)) / cfg.depth


@dataclass(frozen=True)
class SubsetResult:
    """The evaluation subset classified at one setting."""

    pred: np.ndarray  # (n,) predicted classes
    input_tokens: float  # mean tokens entering the encoder (CLS included)
    mean_tokens: float  # ... averaged over the encoder blocks (TNT prunes inside)

    def accuracy(self, labels: np.ndarray) -> float:
        return float((self.pred == labels).mean())


def classify_subset(
    model: ImageClassifier,
    x: torch.Tensor,
    sel: Selection,
    tokenized: list[TokenBatch] | None = None,
    progress: Callable[[float], None] | None = None,
) -> SubsetResult:
    """`predict` summarised: predictions and mean token counts (`tokenized`, `progress`: see `predict`)."""
    probs, tokens, final = predict(model, x, sel, tokenized=tokenized, progress=progress)
    blocks = mean_tokens_over_blocks(model.cfg, tokens.float().mean(), final.float().mean())
    return SubsetResult(probs.argmax(-1).numpy(), tokens.float().mean().item(), float(blocks))


@dataclass(frozen=True)
class Measured:
    """The current setting measured on the subset: the star on the accuracy chart."""

    curve: str  # the model's curve name (its label on the page)
    kind: str | None  # the Setting kind of the budget in use; None: every token
    tokens: float
    accuracy: float

    @property
    def summary(self) -> str:
        return (
            f"At this setting {self.curve} classifies **{self.accuracy:.1%}** of the 2,000 evaluation images "
            f"correctly with **{self.tokens:.1f}** tokens on average (a star marks it)."
        )


Curves = dict[str, list[tuple[float, float, str]]]


def accuracy_curves(
    checkpoints: Sequence[tuple[str, Mapping | None, Mapping | None]], measured: Measured | None = None
) -> tuple[Curves, dict[str, tuple[float, float]]]:
    """Accuracy-vs-tokens curves from each checkpoint's (label, config, card): one per budget of its
    evaluation table, named "<label> · <the budget's short name>" from the tokenizer's settings and
    ending at the all-tokens point (a model with no budget is one point under its label); and the
    measured point, on the model's curve of the budget in use (else its first curve)."""
    curves: Curves = {}
    mine: list[str] = []
    for label, config, card in checkpoints:
        table = (card or {}).get("evaluation")
        if not table:
            continue
        cfg = ImageConfig.from_json({"tokenizer": "", **(config or {})})
        tokenizer = TOKENIZERS.get(cfg.tokenizer)
        names = {s.kind: s.name for s in tokenizer.eval_settings(cfg)} if tokenizer else {}
        rows = table["rows"]
        every = next((r for r in rows if r["setting"] == "all"), None)
        tail = [(every["mean_tokens"], every["accuracy"], ALL_TOKENS.label)] if every else []
        kinds = sorted({r["setting"] for r in rows} - {"all"})
        keys = [f"{label} · {names.get(kind, kind)}" for kind in kinds]
        for kind, key in zip(kinds, keys, strict=True):
            points = [(r["mean_tokens"], r["accuracy"], r["label"]) for r in rows if r["setting"] == kind]
            curves[key] = points + tail
        if not kinds and every:
            keys = [label]
            curves[label] = tail
        if measured is not None and label == measured.curve:
            mine = [f"{label} · {names.get(measured.kind, measured.kind)}"] if measured.kind else []
            mine = [k for k in mine if k in keys] + keys
    current: dict[str, tuple[float, float]] = {}
    if measured is not None:
        target = mine[0] if mine else measured.curve
        current[target] = (measured.tokens, measured.accuracy)
        curves.setdefault(target, [])
    return curves, current


def curve_rows(curves: Curves) -> list[dict]:
    """The curves as table rows (what the page's download buttons write)."""
    return [
        {"curve": k, "tokens": p[0], "accuracy": p[1], "setting": p[2]}
        for k, pts in curves.items()
        for p in pts
    ]


def model_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 Fashion-MNIST images (n, 28, 28) -> model input (n, 1, 32, 32) in [0, 1], a 2-pixel black
    border (the batch form of preprocess.fashion_style)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)
    return torch.nn.functional.pad(x, (2, 2, 2, 2)).unsqueeze(1)


def eval_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped subset as model input (n, 1, 32, 32) in [0, 1] and labels (n,)."""
    images, labels = eval_subset()
    return model_batch(images), torch.from_numpy(labels.astype(np.int64))


@torch.inference_mode()
def tokenize_batches(
    model: ImageClassifier, x: torch.Tensor, sel: Selection, batch: int = 128
) -> list[TokenBatch]:
    """The tokenizer's output for x in `predict`'s batches: threshold-free (it depends on the
    FFT budget only), so a page that re-classifies the same images at many thresholds makes it
    once (the SVD-TEF tokenizer is about a third of the classification time)."""
    return [model.tokenize(x[i : i + batch], sel) for i in range(0, len(x), batch)]


def _by_kept_count(
    tokenized: list[TokenBatch], sel: Selection, batch: int
) -> tuple[list[TokenBatch], torch.Tensor]:
    """The same tokens regrouped into batches of images that keep similar numbers of them, and the
    order (new position -> image). The encoder pads each batch to its longest kept set: at a
    threshold, batches in the subset's own order waste 12 % of the encoder's tokens on padding
    (SVD-TEF, t = 0.7), sorted batches about none."""
    counts = torch.cat([input_keep_mask(tb, sel).sum(1) for tb in tokenized])
    order = torch.sort(counts, stable=True).indices

    def field(name: str) -> torch.Tensor | None:
        parts = [getattr(tb, name) for tb in tokenized]
        return None if parts[0] is None else torch.cat(parts)[order]

    whole = {name: field(name) for name in ("tokens", "positions", "scores", "valid")}
    return [
        TokenBatch(**{k: None if v is None else v[i : i + batch] for k, v in whole.items()})
        for i in range(0, len(order), batch)
    ], order


def _regroupable(tokenized: list[TokenBatch] | None, sel: Selection) -> bool:
    """Sorting pays where the kept count varies by image (a threshold) and the batches can be
    joined (one token count, the same optional fields)."""
    if not tokenized or sel.t is None:
        return False
    first = tokenized[0]
    return all(
        tb.tokens.shape[1:] == first.tokens.shape[1:]
        and (tb.scores is None) == (first.scores is None)
        and (tb.valid is None) == (first.valid is None)
        for tb in tokenized
    )


@torch.inference_mode()  # no autograd bookkeeping at all: ~13 % faster than no_grad here
def predict(
    model: ImageClassifier,
    x: torch.Tensor,
    sel: Selection,
    batch: int = 128,
    tokenized: list[TokenBatch] | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities (n, classes), tokens entering the encoder (n,), tokens after TNT (n,)). Batches
    of 128: on a 2-core CPU the 2,000 subset images take 1.3 s so, 1.5 s in batches of 500.
    `tokenized`: `tokenize_batches(model, x, sel, batch)` made earlier for the same budget (at a
    threshold, its images are then batched by kept count, and the results put back in order);
    `progress`: called with the share of images done after each batch."""
    order = None
    if _regroupable(tokenized, sel):
        tokenized, order = _by_kept_count(tokenized, sel, batch)
        order = order.cpu()  # made beside the tokens (the model's device); it indexes the CPU subset
    probs, tokens, final = [], [], []
    for j, i in enumerate(range(0, len(x), batch)):
        if progress is not None:
            progress(i / len(x))
        images = x[order[i : i + batch]] if order is not None else x[i : i + batch]
        out: ClassifierOutput = model(images, sel, tokens=tokenized[j] if tokenized else None)
        probs.append(out.logits.float().softmax(-1).cpu())
        tokens.append(out.n_tokens.cpu())
        final.append(out.n_tokens_final.cpu())
    probs, tokens, final = torch.cat(probs), torch.cat(tokens), torch.cat(final)
    if order is not None:  # back to the subset's order
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order))
        probs, tokens, final = probs[back], tokens[back], final[back]
    return probs, tokens, final


def macro_f1(pred: np.ndarray, labels: np.ndarray, classes: int) -> float:
    f1 = []
    for c in range(classes):
        tp = np.sum((pred == c) & (labels == c))
        fp = np.sum((pred == c) & (labels != c))
        fn = np.sum((pred != c) & (labels == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


def evaluate_setting(model: ImageClassifier, x: torch.Tensor, y: torch.Tensor, setting: Setting) -> dict:
    probs, tokens, final = predict(model, x, setting.selection)
    pred = probs.argmax(-1).numpy()
    labels = y.numpy()
    mean_tokens = mean_tokens_over_blocks(model.cfg, tokens.float(), final.float())
    return {
        "setting": setting.kind,
        "value": setting.value,
        "label": setting.label,
        "accuracy": round(float((pred == labels).mean()), 4),
        "macro_f1": round(macro_f1(pred, labels, model.cfg.classes), 4),
        "mean_tokens": round(float(mean_tokens.mean()), 2),
        "mean_input_tokens": round(float(tokens.float().mean()), 2),
    }


def evaluate_model(model: ImageClassifier, x: torch.Tensor, y: torch.Tensor, progress: bool = True) -> dict:
    start = time.perf_counter()
    rows = [
        evaluate_setting(model, x, y, s)
        for s in tqdm(settings_for(model), desc=model.cfg.tokenizer, disable=not progress)
    ]
    return {
        "tokenizer": model.cfg.tokenizer,
        "images": len(x),
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 2),
    }


def eval_images(
    checkpoints: list[Path], out: Path, write_cards: bool = False, limit: int | None = None
) -> dict:
    from tefviz.images.checkpoint import load_image_classifier

    x, y = eval_inputs()
    if limit:
        x, y = x[:limit], y[:limit]
    tables = {}
    for path in checkpoints:
        model = load_image_classifier(path)
        table = evaluate_model(model, x, y)
        table["subset"] = "tefviz/assets/fashion_mnist_eval.npz (2,000 test images, 200 per class)"
        tables[path.name] = table
        print_table(path.name, table)
        if write_cards:
            card_path = path / "card.json"
            card = json.loads(card_path.read_text())
            card["evaluation"] = table
            card_path.write_text(json.dumps(card, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tables, indent=1))
    return tables


def print_table(name: str, table: dict) -> None:
    print(f"\n{name} ({table['tokenizer']}), {table['images']} images, {table['seconds']} s")
    print("| setting | tokens | accuracy | macro-F1 |\n|---|---|---|---|")
    for r in table["rows"]:
        print(f"| {r['label']} | {r['mean_tokens']:.1f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} |")
