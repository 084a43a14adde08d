"""The held-out text samples shipped with the app (no corpus needed at run time), one per domain.

Each is a JSON file in tefviz/assets/ ({"source", "licence", "split", "samples": [{"id", "text"}]},
newer files also name their domain, package and how they were made); none is in any training
corpus. `heldout_text()` / `heldout_samples()` are the Austen sample, as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tefviz.errors import InputError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HELDOUT_PATH = ASSETS / "heldout_austen.json"

# name -> (file, domain); the order is the order tables list them in
SAMPLE_FILES: dict[str, tuple[str, str]] = {
    "austen": ("heldout_austen.json", "prose"),
    "genesis": ("heldout_genesis.json", "scripture"),
    "debref": ("heldout_debref.json", "technical documentation"),
    "gcide": ("heldout_gcide.json", "dictionary"),
}
SAMPLE_CHARS = 30_000  # about 7,000 tokens of the shipped tokenizer: 4+ windows of 512, one of 2,048


@dataclass(frozen=True)
class HeldoutSample:
    name: str
    domain: str
    title: str
    source: str
    licence: str
    split: str
    path: Path
    parts: int
    characters: int


@cache
def _payload(name: str) -> dict:
    if name not in SAMPLE_FILES:
        raise InputError(f"unknown held-out sample {name!r}; choose one of {sorted(SAMPLE_FILES)}")
    return json.loads((ASSETS / SAMPLE_FILES[name][0]).read_text(encoding="utf-8"))


def list_samples() -> list[HeldoutSample]:
    """Every shipped sample with its domain, source and licence."""
    out = []
    for name, (file, domain) in SAMPLE_FILES.items():
        p = _payload(name)
        out.append(HeldoutSample(name, p.get("domain", domain), p.get("title", name.capitalize()),
                                 p["source"], p["licence"], p["split"], ASSETS / file, len(p["samples"]),
                                 len(sample_text(name))))
    return out


def sample_parts(name: str) -> list[dict]:
    """[{'id': ..., 'text': ...}, ...]: the sample's chapters, sections or entries."""
    return _payload(name)["samples"]


def sample_text(name: str) -> str:
    """One shipped sample's text by name (see `SAMPLE_FILES`)."""
    return "\n\n".join(s["text"] for s in sample_parts(name))


def heldout_samples() -> list[dict]:
    """[{'id': 'Emma/012', 'text': ...}, ...]: Austen test-split chapters, never trained on."""
    return sample_parts("austen")


def heldout_text() -> str:
    return sample_text("austen")


# --- how the samples were made ------------------------------------------------------------


def _take(docs, max_chars: int) -> list[dict]:
    parts, total = [], 0
    for doc_id, text in docs:
        if total >= max_chars:
            break
        parts.append({"id": doc_id, "text": text})
        total += len(text) + 2
    return parts


def write_samples(cache_dir: Path, max_chars: int = SAMPLE_CHARS) -> list[Path]:
    """Write the Genesis, Debian Reference and GCIDE samples from their Debian packages (found
    system-wide or unpacked under cache_dir/root, as `data build` does). Austen's sample is
    `data heldout`'s."""
    from tefviz.data.corpus import (
        _VERSE,
        KJV_HELD_OUT_BOOKS,
        SOURCES,
        _split,
        locate_source,
        read_brs_text,
        read_debian_reference,
    )

    made_by = f"python -m tefviz.data.heldout --cache {cache_dir}"
    written = []

    # KJV Genesis: held out of every corpus (read_kjv skips it), chapters from the start
    assert "Ge" in KJV_HELD_OUT_BOOKS
    chapters: dict[int, list[str]] = {}
    for line in read_brs_text(locate_source(SOURCES["kjv"], cache_dir).read_bytes()).splitlines():
        m = _VERSE.match(line)
        if m and m[1] == "Ge":
            chapters.setdefault(int(m[2]), []).append(m[4].strip())
    genesis = _take(((f"Genesis/{c:03d}", f"Genesis {c}\n\n" + "\n".join(v)) for c, v in chapters.items()),
                    max_chars)

    # Debian Reference: left out of every corpus; consecutive sections from chapter 2 on
    sections = list(read_debian_reference(locate_source(SOURCES["debref"], cache_dir)))
    start = next(i for i, d in enumerate(sections) if d.doc_id.startswith("Chapter 2."))
    debref = _take(((d.doc_id, d.text) for d in sections[start:]), max_chars)

    # GCIDE: entries of the corpus's test split (never trained on), consecutive, words only
    gcide_docs = SOURCES["gcide"].reader(locate_source(SOURCES["gcide"], cache_dir))
    gcide = _take(((f"gcide/{d.doc_id}", d.text) for d in gcide_docs
                   if _split(d) == "test" and d.text[:1].isalpha()), max_chars)

    payloads = {
        "genesis": {
            "title": "KJV Genesis", "domain": "scripture", "package": "bible-kjv-text",
            "source": "The King James Bible (1611), the Book of Genesis from its first chapter, read from "
                      "bible-kjv-text's compressed data file (usr/lib/bible.data)",
            "licence": "public domain (the 1611 translation; Crown copyright applies in the UK only); "
                       "bible-kjv-text packaging GPL-2+",
            "split": "held out of every training corpus (tefviz.data.corpus.KJV_HELD_OUT_BOOKS)",
            "samples": genesis,
        },
        "debref": {
            "title": "Debian Reference", "domain": "technical documentation",
            "package": "debian-reference-en",
            "source": "Osamu Aoki, Debian Reference (plain-text edition, 2.100), consecutive sections from "
                      "chapter 2 (Debian package management)",
            "licence": "GPL-2+ (Copyright 2007-2013 Osamu Aoki <osamu@debian.org>; this document may be used "
                       "under the terms of the GNU General Public License version 2 or higher)",
            "split": "held out of every training corpus (no corpus in tefviz.data.corpus.CORPORA lists "
                     "debref)",
            "samples": debref,
        },
        "gcide": {
            "title": "GCIDE dictionary", "domain": "dictionary", "package": "dict-gcide",
            "source": "GNU Collaborative International Dictionary of English (0.48.5, from Webster's 1913 "
                      "and WordNet), consecutive entries of the corpus's test split",
            "licence": "GPL-2+ (GCIDE); Webster's 1913 text public domain",
            "split": "test (never seen in training: split by hash in tefviz.data.corpus.split_of)",
            "samples": gcide,
        },
    }
    for name, payload in payloads.items():
        path = ASSETS / SAMPLE_FILES[name][0]
        payload = {"name": name, **payload, "made_by": made_by}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    _payload.cache_clear()
    return written


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="write the shipped held-out samples from Debian packages")
    ap.add_argument("--cache", type=Path, default=Path("data/debs"))
    ap.add_argument("--max-chars", type=int, default=SAMPLE_CHARS)
    a = ap.parse_args()
    for p in write_samples(a.cache, a.max_chars):
        print(f"wrote {p} ({p.stat().st_size:,} bytes)")
