"""Fashion-MNIST readers and the shipped evaluation subset."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tefviz.data.fashion_mnist import CLASSES, eval_subset, read_idx, stratified_subset
from tefviz.errors import DataError


def test_shipped_subset_is_stratified():
    images, labels = eval_subset()
    assert images.shape == (2000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [200] * len(CLASSES)


def test_idx_readers(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = b"".join(x.to_bytes(4, "big") for x in (2051, 2, 3, 4))
    (tmp_path / "i.gz").write_bytes(gzip.compress(header + imgs.tobytes()))
    assert (read_idx(tmp_path / "i.gz", "images") == imgs).all()
    (tmp_path / "l.gz").write_bytes(
        gzip.compress((2049).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"\x01\x09")
    )
    assert read_idx(tmp_path / "l.gz", "labels").tolist() == [1, 9]
    with pytest.raises(DataError, match="not an idx3"):
        read_idx(tmp_path / "l.gz", "images")


def test_stratified_subset_is_deterministic():
    labels = np.repeat(np.arange(3), 50)
    a, b = stratified_subset(labels, 10), stratified_subset(labels, 10)
    assert (a == b).all() and np.bincount(labels[a]).tolist() == [10, 10, 10]
