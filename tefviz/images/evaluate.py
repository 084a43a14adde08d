"""`python -m tefviz eval images`: the analogue of the thesis' Table 2 on the shipped evaluation
subset (2,000 Fashion-MNIST test images, 200 per class): accuracy, macro-F1 and mean tokens (CLS
included) for every tokenizer at every setting of its budget."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tefviz.data.fashion_mnist import eval_subset
from tefviz.images.model import ClassifierOutput, ImageClassifier, Selection
from tefviz.images.tokenizers import TokenBatch

THRESHOLDS = (1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.1)
TOP_K = {"svd_tef": (16, 32, 40, 48), "svd_exact": (1, 2, 4, 8, 16)}
FFT_SIDES = (32, 24, 16, 8)
FFT_ENERGY = (0.99, 0.95, 0.9)
TNT_KEEP = (0.9, 0.7, 0.5, 0.3)


@dataclass(frozen=True)
class Setting:
    kind: str  # "all", "t", "top_k", "fft_side", "fft_energy", "tnt_keep"
    value: float | int | None
    selection: Selection

    @property
    def label(self) -> str:
        names = {
            "all": "all tokens",
            "t": "t",
            "top_k": "top-k",
            "fft_side": "side",
            "fft_energy": "energy p",
            "tnt_keep": "TNT keep",
        }
        return names[self.kind] if self.value is None else f"{names[self.kind]} = {self.value:g}"


def settings_for(model: ImageClassifier) -> list[Setting]:
    """Every budget setting the table reports for this model's tokenizer."""
    name = model.cfg.tokenizer
    out = [Setting("all", None, Selection())]
    if model.tokenizer.scored:
        out += [Setting("t", t, Selection(t=t)) for t in THRESHOLDS if t < 1.0]
        out += [Setting("top_k", k, Selection(top_k=k)) for k in TOP_K.get(name, ())]
    if name == "fft":
        out += [Setting("fft_side", s, Selection(fft_side=s)) for s in FFT_SIDES if s < model.cfg.image_size]
        out += [Setting("fft_energy", p, Selection(fft_energy=p)) for p in FFT_ENERGY]
    if model.cfg.tnt_layers:
        out += [Setting("tnt_keep", r, Selection(tnt_keep=r)) for r in TNT_KEEP]
    return out


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
def tokenize_batches(model: ImageClassifier, x: torch.Tensor, sel: Selection,
                     batch: int = 128) -> list[TokenBatch]:
    """The tokenizer's output for x in `predict`'s batches: threshold-free (it depends on the
    FFT budget only), so a page that re-classifies the same images at many thresholds makes it
    once (the SVD-TEF tokenizer is about a third of the classification time)."""
    return [model.tokenize(x[i : i + batch], sel) for i in range(0, len(x), batch)]


@torch.inference_mode()  # no autograd bookkeeping at all: ~13 % faster than no_grad here
def predict(
    model: ImageClassifier, x: torch.Tensor, sel: Selection, batch: int = 128,
    tokenized: list[TokenBatch] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities (n, classes), tokens entering the encoder (n,), tokens after TNT (n,)). Batches
    of 128: on a 2-core CPU the 2,000 subset images take 1.3 s so, 1.5 s in batches of 500.
    `tokenized`: `tokenize_batches(model, x, sel, batch)` made earlier for the same budget."""
    probs, tokens, final = [], [], []
    for j, i in enumerate(range(0, len(x), batch)):
        out: ClassifierOutput = model(x[i : i + batch], sel, tokens=tokenized[j] if tokenized else None)
        probs.append(out.logits.float().softmax(-1).cpu())
        tokens.append(out.n_tokens.cpu())
        final.append(out.n_tokens_final.cpu())
    return torch.cat(probs), torch.cat(tokens), torch.cat(final)


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
    # TNT drops tokens inside the encoder: report the mean over blocks, the cost that matters
    layer = model.cfg.tnt_layers[0] + 1 if model.cfg.tnt_layers else model.cfg.depth
    mean_tokens = (tokens.float() * layer + final.float() * (model.cfg.depth - layer)) / model.cfg.depth
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
