"""Image tokenizers, one file each, in one `Registry` keyed by name.

Adding one: subclass `ImageTokenizer` (or `ScoredTokenizer`) in a new module, decorate it with
`@TOKENIZERS.register`, declare what differs (budgets, evaluation settings, training budget,
figures, `order`; see `ImageTokenizer`), and import the module below. The classifier, the page,
`eval images`, `bench images` and `train images` read everything else from the class.
"""

from __future__ import annotations

from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, ScoredTokenizer, TokenBatch
from tefviz.registry import Registry

TOKENIZERS: Registry[type[ImageTokenizer]] = Registry("image tokenizer")

from tefviz.images.tokenizers import fft_lowpass, patch, svd_exact, svd_tef  # noqa: E402,F401

__all__ = ["TOKENIZERS", "ImageConfig", "ImageTokenizer", "ScoredTokenizer", "TokenBatch"]
