"""Image tokenizers, one file each, registered here by name.

Adding one: subclass `ImageTokenizer` in a new module, decorate it with `@register`, import the
module below; `ImageClassifier` and the page pick it up from `TOKENIZERS`.
"""

from __future__ import annotations

from tefviz.images.tokenizers.base import ImageConfig, ImageTokenizer, TokenBatch

TOKENIZERS: dict[str, type[ImageTokenizer]] = {}


def register(cls: type[ImageTokenizer]) -> type[ImageTokenizer]:
    if cls.name in TOKENIZERS:
        raise ValueError(f"image tokenizer {cls.name!r} registered twice")
    TOKENIZERS[cls.name] = cls
    return cls


from tefviz.images.tokenizers import fft_lowpass, patch, svd_exact, svd_tef  # noqa: E402,F401

__all__ = ["TOKENIZERS", "ImageConfig", "ImageTokenizer", "TokenBatch", "register"]
