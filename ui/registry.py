"""Every page of the app, in one list: app.py builds the navigation from it, Home links to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # file under pages/
    title: str
    icon: str
    blurb: str
    url_path: str = ""


PAGES: list[PageSpec] = [
    PageSpec("pages/home.py", "Home", ":material/home:",
             "What tefviz is, the device it runs on, and the models it ships."),
    PageSpec("pages/language_model.py", "Language model", ":material/notes:",
             "How surprised the model is by each token of a text: perplexity, bits per byte, "
             "the model's own guesses. The base every text view builds on.", "language-model"),
    PageSpec("pages/text.py", "Text", ":material/content_cut:",
             "Per-token TEF scores and a live threshold: which tokens are dropped and what it costs "
             "in perplexity, against random, uniform and attention-mass baselines.", "text"),
]
