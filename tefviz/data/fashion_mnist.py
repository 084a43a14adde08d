"""Fashion-MNIST (MIT) from the Debian package `dataset-fashion-mnist`, read with numpy, and the
stratified evaluation subset shipped in the repository so the app needs no package at run time."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from tefviz.data.corpus import Source, locate_source
from tefviz.errors import DataError

PACKAGE = "dataset-fashion-mnist"
LICENCE = "MIT (Zalando Research)"
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
EVAL_SUBSET = Path(__file__).resolve().parent.parent / "assets" / "fashion_mnist_eval.npz"
_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}


def _source(split: str, kind: str) -> Source:
    name = _FILES[(split, kind)]
    return Source(
        f"fashion-mnist/{name}",
        PACKAGE,
        f"usr/share/datasets/fashion-mnist/{name}",
        LICENCE,
        "Fashion-MNIST",
        reader=lambda p: iter(()),
    )


def read_idx(path: Path, kind: str) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    if kind == "images":
        if len(raw) < 16 or int.from_bytes(raw[:4], "big") != 2051:
            raise DataError(f"{path.name} is not an idx3 image file")
        n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != 2049:
        raise DataError(f"{path.name} is not an idx1 label file")
    return np.frombuffer(raw, np.uint8, offset=8)


def load_split(split: str, cache_dir: Path = Path("data/debs")) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels (n,) uint8) for 'train' or 'test'."""
    if split not in ("train", "test"):
        raise DataError(f"Fashion-MNIST has train and test splits, not {split!r}")
    images = read_idx(locate_source(_source(split, "images"), cache_dir), "images")
    labels = read_idx(locate_source(_source(split, "labels"), cache_dir), "labels")
    if len(images) != len(labels):
        raise DataError("Fashion-MNIST images and labels differ in count")
    return images, labels


def stratified_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices: `per_class` of each class, drawn with a fixed seed, in ascending order."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def write_eval_subset(
    out: Path = EVAL_SUBSET, per_class: int = 200, cache_dir: Path = Path("data/debs")
) -> Path:
    images, labels = load_split("test", cache_dir)
    idx = stratified_subset(labels, per_class)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images[idx], labels=labels[idx], test_index=idx.astype(np.int32))
    return out


def eval_subset() -> tuple[np.ndarray, np.ndarray]:
    """The shipped 2,000 test images (200 per class) and labels."""
    with np.load(EVAL_SUBSET) as z:
        return z["images"], z["labels"]
