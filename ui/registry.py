"""Every page of the app, in one list: app.py builds the navigation from it, Home links to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # file under pages/
    title: str
    icon: str
    blurb: str
    url_path: str = ""  # "" for the default page

    # Streamlit still scans a folder named pages/ the legacy way and, on a session's first run,
    # matches the URL against the file names before st.navigation has run: a url_path other than
    # the file stem then flashes "Page not found" over a shared link (streamlit#8860).


PAGES: list[PageSpec] = [
    PageSpec(
        "pages/home.py",
        "Home",
        ":material/home:",
        "What tefviz is, the device it runs on, and the models it ships.",
    ),
    PageSpec(
        "pages/language_model.py",
        "Language model",
        ":material/notes:",
        "How surprised the model is by each token of a text: perplexity, bits per byte, "
        "the model's own guesses. The base every text view builds on.",
        "language_model",
    ),
    PageSpec(
        "pages/text.py",
        "Text",
        ":material/content_cut:",
        "Per-token TEF scores and a live threshold: which tokens are dropped and what it costs "
        "in perplexity, against random, uniform and attention-mass baselines.",
        "text",
    ),
    PageSpec(
        "pages/generate.py",
        "Generation",
        ":material/auto_stories:",
        "A prompt continued with a KV cache cut back after every token (StreamingLLM, H2O, TOVA, "
        "key norm, causal TEF) beside dense generation: evicted tokens struck through, cache size, "
        "per-step KL to dense and where the two texts part.",
        "generate",
    ),
    PageSpec(
        "pages/images.py",
        "Images",
        ":material/image:",
        "Kept and dropped patches under SVD-TEF, the FFT low-pass, exact SVD and TNT pruning on "
        "Fashion-MNIST, your uploads and photos: prediction at the threshold, accuracy vs tokens, "
        "and the images whose prediction flips.",
        "images",
    ),
    PageSpec(
        "pages/attention.py",
        "Attention patterns",
        ":material/grid_on:",
        "Sliding, dilated, global, random, blockwise and BigBird masks, combined your way: which "
        "cells they allow, how many layers information needs, what they save, what they do to the "
        "model, and their measured speed.",
        "attention",
    ),
    PageSpec(
        "pages/efficient_attention.py",
        "Efficient attention",
        ":material/speed:",
        "Performer, Linformer and the ∞-former's continuous memory beside exact attention on the "
        "model's real queries and keys: implied matrices, error as they grow, speed and memory by "
        "length with fitted slopes.",
        "efficient_attention",
    ),
    PageSpec(
        "pages/embeddings.py",
        "Embeddings",
        ":material/compress:",
        "Tensor-train, low-rank, quantised, dynamic bit-width and LoRA-adapted embeddings: bytes "
        "saved vs held-out perplexity, which tokens suffer, and the Pareto front.",
        "embeddings",
    ),
]


def _check_url_paths() -> None:
    for spec in PAGES[1:]:
        stem = spec.path.rsplit("/", 1)[-1].removesuffix(".py")
        if spec.url_path != stem:
            raise ValueError(f"{spec.path}: url_path must be the file stem {stem!r} (see PageSpec)")


_check_url_paths()
