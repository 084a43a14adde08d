"""The evaluation subset classified at a setting, as a job for the background worker
(tefviz/workers.py): the worker process keeps the model and the subset's tokens between jobs, so
a new threshold only re-runs the keep rule and the encoder there."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from tefviz.images.budget import Selection
from tefviz.images.checkpoint import load_image_classifier
from tefviz.images.evaluate import SubsetResult, classify_subset, eval_inputs, tokenize_batches
from tefviz.images.model import ImageClassifier
from tefviz.images.tokenizers import TOKENIZERS, TokenBatch
from tefviz.workers import report_progress


@functools.lru_cache(maxsize=1)
def _subset() -> torch.Tensor:
    return eval_inputs()[0]


@functools.lru_cache(maxsize=4)
def _model(path: str, version: str) -> ImageClassifier:  # `version`: a re-exported checkpoint reloads
    return load_image_classifier(Path(path))


@functools.lru_cache(maxsize=4)  # 2,000 x 64 tokens x 128 floats: 65 MB each
def _tokens(path: str, version: str, budget: Selection) -> list[TokenBatch]:
    return tokenize_batches(_model(path, version), _subset(), budget)


def classify_checkpoint_subset(
    path: str, version: str, sel: Selection, tokenizer: tuple[str, str]
) -> SubsetResult:
    """The 2,000 evaluation images classified by the checkpoint at `path` (weights `version`) at
    `sel`; tokens made once per budget. Runs in the worker (called by name: picklable);
    `tokenizer`: `TOKENIZERS.reference(name)` of the checkpoint's tokenizer, so one registered at
    run time in the server is known here too."""
    TOKENIZERS.adopt(*tokenizer)
    report_progress(0.0)
    tokens = _tokens(path, version, sel.tokenizer_part())
    return classify_subset(_model(path, version), _subset(), sel, tokens, progress=report_progress)
