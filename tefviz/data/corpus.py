"""The English training corpus, assembled from offline Debian packages.

Every source records its package and licence; the manifest written beside the
splits carries them into the model card. Documents (a novel's chapter, a
dictionary entry) are assigned to train/valid/test by a hash of their id, so the
split is deterministic and independent of the order sources are read in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import struct
import subprocess
import tempfile
import textwrap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tefviz.errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Document:
    source: str
    doc_id: str
    text: str


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    path: str  # the data file inside the package
    licence: str
    description: str
    reader: Callable[[Path], Iterator[Document]]
    heldout_frac: float = 0.02  # each of valid and test


# --- readers -------------------------------------------------------------------------


def _reflow(block: str) -> str:
    """Join hard-wrapped lines into paragraphs separated by one blank line."""
    paragraphs = re.split(r"\n\s*\n", textwrap.dedent(block))
    out = [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paragraphs]
    return "\n\n".join(p for p in out if p)


def _r_strings(payload: bytes) -> list[str]:
    """Strings of a character vector in R's XDR serialisation (format version 3).

    Only what the janeaustenr data needs: one top-level STRSXP of CHARSXPs.
    """
    if payload[:2] != b"X\n":
        raise DataError("not an R XDR serialisation")
    pos = 2
    version = struct.unpack(">i", payload[pos : pos + 4])[0]
    pos += 12  # version, writer R version, minimal reader version
    if version == 3:
        enc_len = struct.unpack(">i", payload[pos : pos + 4])[0]
        pos += 4 + enc_len
    flags, length = struct.unpack(">ii", payload[pos : pos + 8])
    pos += 8
    if flags & 0xFF != 16:  # STRSXP
        raise DataError(f"expected an R character vector, got SEXP type {flags & 0xFF}")
    strings = []
    for _ in range(length):
        _flags, n = struct.unpack(">ii", payload[pos : pos + 8])
        pos += 8
        if n < 0:  # NA_character_
            strings.append("")
            continue
        strings.append(payload[pos : pos + n].decode("utf-8", errors="replace"))
        pos += n
    return strings


def _r_lazyload_blocks(rdb: bytes) -> Iterator[bytes]:
    """Objects of an R lazy-load database: each is a 4-byte length + a zlib stream."""
    pos = 0
    while pos < len(rdb):
        d = zlib.decompressobj()
        out = d.decompress(rdb[pos + 4 :])
        pos = len(rdb) - len(d.unused_data)
        yield out


_CHAPTER = re.compile(r"^\s*chapter\s+([0-9ivxlc]+|[a-z]+)\b.*$", re.IGNORECASE)


def read_austen(path: Path) -> Iterator[Document]:
    """Jane Austen's six novels, one document per chapter."""
    for lines in map(_r_strings, _r_lazyload_blocks(path.read_bytes())):
        title = lines[0].strip().title()
        chapter, buf = 0, []

        def flush() -> Document | None:
            text = _reflow("\n".join(buf))
            return Document("austen", f"{title}/{chapter:03d}", text) if text else None

        for line in lines[1:]:
            if _CHAPTER.match(line):
                if (doc := flush()) is not None:
                    yield doc
                chapter, buf = chapter + 1, []
            else:
                buf.append(line)
        if (doc := flush()) is not None:
            yield doc


def read_dictd(name: str) -> Callable[[Path], Iterator[Document]]:
    """A dictd database (.dict.dz, gzip-readable): one document per headword entry."""

    def reader(path: Path) -> Iterator[Document]:
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        # Entries start with an unindented headword line; bodies are indented.
        entries = re.split(r"\n(?=\S)", text)
        for i, entry in enumerate(entries):
            head, _, body = entry.partition("\n")
            if head.startswith("00-database") or head.startswith("00database") or not body.strip():
                continue
            body = _reflow(body)
            if len(body) < 40:
                continue
            yield Document(name, f"{i:06d}", f"{head.strip()}\n\n{body}")

    return reader


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "austen", "r-cran-janeaustenr",
            "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",
            "novels: public domain; package: MIT",
            "Jane Austen's six completed novels (janeaustenr R package)", read_austen,
            heldout_frac=0.05,  # few, long documents: hold out more for a stable prose metric
        ),
        Source(
            "foldoc", "dict-foldoc", "usr/share/dictd/foldoc.dict.dz",
            "GFDL-1.1-or-later", "Free On-line Dictionary of Computing (2023)",
            read_dictd("foldoc"),
        ),
        Source(
            "jargon", "dict-jargon", "usr/share/dictd/jargon.dict.dz",
            "public domain", "The Jargon File 4.4.7", read_dictd("jargon"),
        ),
        Source(
            "devil", "dict-devil", "usr/share/dictd/devil.dict.dz",
            "public domain", "Ambrose Bierce, The Devil's Dictionary (1911)",
            read_dictd("devil"),
        ),
    ]
}


# --- fetching ------------------------------------------------------------------------


def locate_source(source: Source, cache_dir: Path) -> Path:
    """The source's data file: installed system-wide, or unpacked from its .deb.

    `apt-get download` needs no root and no dependency resolution, so the R and
    dictd runtimes the packages depend on are never installed.
    """
    for root in (Path("/"), cache_dir / "root"):
        if (root / source.path).is_file():
            return root / source.path
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError(
            f"source {source.name!r} needs Debian package {source.package!r}, "
            "and this machine has no apt-get/dpkg-deb; install it or use --text-files"
        )
    (cache_dir / "root").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["apt-get", "download", "-qq", source.package],
            cwd=tmp, capture_output=True, text=True,
        )
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise DataError(
                f"could not download Debian package {source.package!r} "
                f"(try `apt-get update` first): {result.stderr.strip()[-300:]}"
            )
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(cache_dir / "root")], check=True)
    path = cache_dir / "root" / source.path
    if not path.is_file():
        raise DataError(f"package {source.package!r} has no {source.path}")
    return path


def read_text_files(paths: list[Path]) -> Iterator[Document]:
    """The user's own plain-text files: each paragraph block of ~4 KB is a document."""
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        for i, chunk in enumerate(re.split(r"\n\s*\n\s*\n", text)):
            if chunk.strip():
                yield Document(f"file:{path.name}", f"{i:06d}", _reflow(chunk))


def read_hf_dataset(
    name: str, config: str | None = None, text_field: str = "text", rows_per_doc: int = 64,
    **load_kwargs,
) -> Iterator[Document]:
    """A Hugging Face dataset (online, e.g. `wikitext` / `wikitext-103-raw-v1`), all its splits.

    Rows are lines or short texts; every `rows_per_doc` consecutive rows make one document,
    and tefviz's own hash split is applied on top, like every other source.
    """
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is in requirements.txt
        raise DataError("reading Hugging Face datasets needs `pip install datasets`") from e
    try:
        ds = datasets.load_dataset(name, config, **load_kwargs)
    except Exception as e:  # offline, unknown name, bad config: all end here
        raise DataError(
            f"could not load Hugging Face dataset {name!r}"
            + (f" ({config})" if config else "") + ": offline, or no such dataset/config",
            repr(e),
        ) from e
    label = f"hf:{name}" + (f"/{config}" if config else "")
    for split_name, split in ds.items():
        if text_field not in split.column_names:
            raise DataError(f"dataset {name!r} has no {text_field!r} column: {split.column_names}")
        texts = split[text_field]
        for start in range(0, len(texts), rows_per_doc):
            body = "".join(t if t.endswith("\n") else t + "\n" for t in texts[start : start + rows_per_doc])
            if body.strip():
                yield Document(label, f"{split_name}/{start:09d}", body.strip())


# --- splitting -----------------------------------------------------------------------


def _split(doc: Document) -> str:
    frac = SOURCES[doc.source].heldout_frac if doc.source in SOURCES else 0.02
    return split_of(doc, frac, frac)


def split_of(doc: Document, valid_frac: float = 0.02, test_frac: float = 0.02) -> str:
    """Deterministic split from a hash of the document's identity."""
    h = int.from_bytes(hashlib.sha256(f"{doc.source}/{doc.doc_id}".encode()).digest()[:8], "big")
    u = h / 2**64
    if u < test_frac:
        return "test"
    if u < test_frac + valid_frac:
        return "valid"
    return "train"


def build_corpus(
    out_dir: Path,
    sources: list[str] | None = None,
    text_files: list[Path] | None = None,
    cache_dir: Path | None = None,
    hf_dataset: tuple[str, str | None] | None = None,
) -> dict:
    """Write train/valid/test text files and manifest.json; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_dir or out_dir / "debs"
    names = list(SOURCES) if sources is None else sources
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise DataError(f"unknown corpus source(s) {unknown}; known: {sorted(SOURCES)}")

    docs: list[Document] = []
    manifest: dict = {"sources": [], "splits": {}}
    for name in names:
        src = SOURCES[name]
        path = locate_source(src, cache_dir)
        got = list(src.reader(path))
        docs.extend(got)
        entry = {k: v for k, v in asdict(src).items() if k != "reader"}
        entry.update(documents=len(got), characters=sum(len(d.text) for d in got))
        manifest["sources"].append(entry)
    if text_files:
        got = list(read_text_files(text_files))
        docs.extend(got)
        manifest["sources"].append(
            {"name": "user files", "licence": "as the user's files", "documents": len(got),
             "files": [p.name for p in text_files], "characters": sum(len(d.text) for d in got)}
        )
    if hf_dataset:
        got = list(read_hf_dataset(*hf_dataset))
        docs.extend(got)
        manifest["sources"].append(
            {"name": got[0].source if got else f"hf:{hf_dataset[0]}", "licence": "see the dataset card",
             "documents": len(got), "characters": sum(len(d.text) for d in got)}
        )
    if not docs:
        raise DataError("the corpus is empty")

    for split in SPLITS:
        chosen = [d for d in docs if _split(d) == split]
        text = "\n\n".join(d.text for d in chosen) + "\n"
        (out_dir / f"{split}.txt").write_text(text, encoding="utf-8")
        manifest["splits"][split] = {
            "documents": len(chosen),
            "characters": len(text),
            "bytes": len(text.encode()),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "by_source": {
                s: sum(1 for d in chosen if d.source == s) for s in sorted({d.source for d in chosen})
            },
        }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def austen_heldout(out_path: Path, cache_dir: Path, max_chars: int = 60_000) -> str:
    """The public-domain held-out sample shipped with the app: test-split Austen chapters."""
    path = locate_source(SOURCES["austen"], cache_dir)
    chosen = [d for d in read_austen(path) if _split(d) == "test"]
    parts, total = [], 0
    for d in chosen:
        if total >= max_chars:
            break
        parts.append({"id": d.doc_id, "text": d.text})
        total += len(d.text)
    payload = {
        "source": SOURCES["austen"].description,
        "licence": "public domain (text); janeaustenr package MIT",
        "split": "test (never seen in training)",
        "samples": parts,
    }
    out_path.write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    return out_path.read_text()
