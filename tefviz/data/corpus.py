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
import lzma
import re
import shutil
import struct
import subprocess
import tempfile
import textwrap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
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

        def flush(title: str, chapter: int, buf: list[str]) -> Document | None:
            text = _reflow("\n".join(buf))
            return Document("austen", f"{title}/{chapter:03d}", text) if text else None

        for line in lines[1:]:
            if _CHAPTER.match(line):
                if (doc := flush(title, chapter, buf)) is not None:
                    yield doc
                chapter, buf = chapter + 1, []
            else:
                buf.append(line)
        if (doc := flush(title, chapter, buf)) is not None:
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


def _lzw_decompress(buf: bytes, max_bits: int = 16) -> bytes:
    """Unix `compress` (LZW, block mode) data without its 3-byte header.

    Codes are packed LSB first; when the code width grows or the table is cleared the
    writer pads to a whole group of eight codes, which the reader skips the same way.
    """
    out = bytearray()
    n_bits, top = 9, 1 << max_bits
    prefix, suffix = [0] * top, bytearray(range(256)) + bytearray(top - 256)
    free, old, fin = 257, -1, 0
    pos, group, total = 0, 0, len(buf) * 8

    def skip_group() -> int:
        used = (pos - group) % (n_bits * 8)
        return pos + (n_bits * 8 - used if used else 0)

    while pos + n_bits <= total:
        chunk = int.from_bytes(buf[pos >> 3 : (pos >> 3) + 4].ljust(4, b"\0"), "little")
        code = (chunk >> (pos & 7)) & ((1 << n_bits) - 1)
        pos += n_bits
        if old == -1:
            if code >= 256:
                raise DataError("corrupt LZW data")
            old = fin = code
            out.append(code)
            continue
        if code == 256:  # CLEAR
            pos = group = skip_group()
            n_bits, free, old = 9, 256, -1
            continue
        incode, stack = code, bytearray()
        if code >= free:
            if code > free:
                raise DataError("corrupt LZW data")
            stack.append(fin)
            code = old
        while code >= 256:
            stack.append(suffix[code])
            code = prefix[code]
        fin = suffix[code]
        stack.append(fin)
        out += stack[::-1]
        if free < top:
            prefix[free], suffix[free] = old, fin
            free += 1
        old = incode
        if free > (1 << n_bits) - 1 and n_bits < max_bits:
            pos = group = skip_group()
            n_bits += 1
    return bytes(out)


def read_brs_text(data: bytes) -> str:
    """The text of a Bible Retrieval System data file (bible-kjv-text's `bible.data`).

    Header "EC02...", then at 0x54 the window size and count (big-endian) and the
    window offsets; each window is an independent `compress` stream of `window` bytes.
    """
    if not data.startswith(b"EC02"):
        raise DataError("not a Bible Retrieval System data file")
    window, n = struct.unpack(">ii", data[0x54:0x5C])
    offsets = struct.unpack(f">{n + 1}i", data[0x5C : 0x5C + 4 * (n + 1)])
    parts = [_lzw_decompress(data[offsets[i] : offsets[i + 1]])[:window] for i in range(n)]
    return b"".join(parts).decode("latin-1")


_VERSE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


# Genesis is one of the outside texts the causal TEF is judged on (issue "TEF beyond Austen"): it
# never enters a training corpus, and is shipped as the scripture domain's held-out sample
KJV_HELD_OUT_BOOKS = frozenset({"Ge"})  # the data file abbreviates: Ge, Exo, Lev, ...


def read_kjv(path: Path) -> Iterator[Document]:
    """The King James Bible without Genesis, one document per chapter ("Book Chapter" heading,
    then verses)."""
    chapters: dict[tuple[str, str], list[str]] = {}
    for line in read_brs_text(path.read_bytes()).splitlines():
        m = _VERSE.match(line)
        if m and m[1] not in KJV_HELD_OUT_BOOKS:
            chapters.setdefault((m[1], m[2]), []).append(m[4].strip())
    for (book, chapter), verses in chapters.items():
        yield Document("kjv", f"{book}/{int(chapter):03d}", f"{book} {chapter}\n\n" + "\n".join(verses))


# fortune files left out: pictures, and quotations from in-copyright fiction, comics and songs
FORTUNE_SKIP = frozenset({"art", "ascii-art", "pratchett", "startrek", "zippy", "songs-poems",
                          "translate-me"})


def read_fortunes(path: Path) -> Iterator[Document]:
    """BSD fortune cookie files (`%`-separated), one document per fortune, line breaks kept."""
    for f in sorted(path.iterdir()):
        if f.suffix or f.is_symlink() or not f.is_file() or f.name in FORTUNE_SKIP:
            continue
        text = f.read_bytes().decode("utf-8", errors="replace")
        text = re.sub(r".\x08", "", text)  # overstrike (bold/underline) sequences
        for i, fortune in enumerate(re.split(r"^%\s*$", text, flags=re.MULTILINE)):
            body = "\n".join(line.rstrip() for line in fortune.strip("\n").splitlines()).strip()
            if len(body) >= 20:
                yield Document("fortunes", f"{f.name}/{i:05d}", body)


_DEBREF_HEAD = re.compile(r"^(Chapter \d+\.|Appendix [A-Z]\.|\d+(\.\d+)+\.) ")


def read_debian_reference(path: Path) -> Iterator[Document]:
    """Debian Reference (plain-text edition), one document per numbered section."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace").replace("\u00a0", " ")
    start = text.find("\nChapter 1.")  # skip the tables of contents, figures and tables
    head, buf = None, []

    def flush() -> Document | None:
        body = textwrap.dedent("\n".join(buf)).strip()
        body = re.sub(r"\n{3,}", "\n\n", body)
        return Document("debref", head, f"{head}\n\n{body}") if head and len(body) >= 40 else None

    for line in text[start + 1 :].splitlines():
        if _DEBREF_HEAD.match(line):
            if (doc := flush()) is not None:
                yield doc
            head, buf = line.strip(), []
        else:
            buf.append(line.rstrip())
    if (doc := flush()) is not None:
        yield doc


class _HTMLText(HTMLParser):
    """Readable text of an HTML page: block elements become paragraphs, `<pre>` kept as is,
    navigation and permalinks dropped; headings h1-h3 start new sections."""

    BLOCK = frozenset({"p", "div", "section", "li", "dt", "dd", "pre", "tr", "table", "ul", "ol", "dl",
             "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "figure", "caption"})
    VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"})
    SKIP_CLASS = frozenset({"headerlink", "navheader", "navfooter", "toc", "sphinxsidebar", "related",
                  "footer", "clearer"})

    def __init__(self, main: tuple[str, str] | None):
        super().__init__(convert_charrefs=True)
        self.main = main  # (attribute, value) of the element holding the content
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, inside main, skipped)
        self.sections: list[list[str]] = [[]]
        self.line: list[str] = []
        self.pre = 0

    def _inside(self) -> tuple[bool, bool]:
        return self.stack[-1][1:] if self.stack else (self.main is None, False)

    def _break(self) -> None:
        text = "".join(self.line)
        text = text if self.pre else re.sub(r"\s+", " ", text).strip()
        if text.strip():
            self.sections[-1].append(text.rstrip())
        self.line = []

    def handle_starttag(self, tag, attrs):
        inside, skipped = self._inside()
        a = dict(attrs)
        if self.main and a.get(self.main[0]) == self.main[1]:
            inside = True
        if tag in ("script", "style") or self.SKIP_CLASS & set((a.get("class") or "").split()):
            skipped = True
        if tag in self.BLOCK and inside and not skipped:
            self._break()
            if tag in ("h1", "h2", "h3") and self.sections[-1]:
                self.sections.append([])
        if tag == "pre" and inside and not skipped:
            self.pre += 1
        if tag not in self.VOID:
            self.stack.append((tag, inside, skipped))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        # pop to the matching tag (tolerates unclosed <p>, <li>, ...)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                _, inside, skipped = self.stack[i]
                del self.stack[i:]
                if tag in self.BLOCK and inside and not skipped:
                    self._break()
                if tag == "pre" and inside and not skipped:
                    self.pre = max(0, self.pre - 1)
                return

    def handle_data(self, data):
        inside, skipped = self._inside()
        if inside and not skipped:
            self.line.append(data)

    def result(self) -> list[str]:
        self._break()
        return ["\n\n".join(s) for s in self.sections if s]


def html_sections(html: str, main: tuple[str, str] | None = None) -> list[str]:
    """An HTML page's text, one string per h1-h3 section."""
    parser = _HTMLText(main)
    parser.feed(html)
    parser.close()
    return parser.result()


# generated or bulky pages of the Python docs that are not prose: indexes, the changelog
PYDOC_SKIP = re.compile(r"^(genindex.*|py-modindex|search|whatsnew/changelog|c-api/stable|"
                        r"library/token|library/keyword|license|copyright|bugs|about|download|"
                        r"contents|index)\.html$")


def read_python_docs(path: Path) -> Iterator[Document]:
    """The Python 3.11 documentation (Sphinx HTML), one document per section of each page."""
    for f in sorted(path.rglob("*.html")):
        rel = f.relative_to(path).as_posix()
        if PYDOC_SKIP.match(rel) or rel.startswith(("_static/", "_sources/")):
            continue
        html = f.read_text(encoding="utf-8", errors="replace")
        for i, section in enumerate(html_sections(html, ("role", "main"))):
            if len(section) >= 80:
                yield Document("pydoc", f"{rel}#{i:03d}", section)


def read_gcide(keep_frac: float) -> Callable[[Path], Iterator[Document]]:
    """GCIDE entries (dictd format), a deterministic sample: entries whose hash falls below
    `keep_frac`. Citation tags like "[1913 Webster]" are dropped; line breaks kept."""

    def reader(path: Path) -> Iterator[Document]:
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        for i, entry in enumerate(re.split(r"\n(?=\S)", text)):
            head, _, body = entry.partition("\n")
            if head.startswith("00-database") or not body.strip():
                continue
            doc_id = f"{i:07d}"
            h = int.from_bytes(hashlib.sha256(f"gcide-sample/{doc_id}".encode()).digest()[:8], "big")
            if h / 2**64 >= keep_frac:
                continue
            body = re.sub(r"^\s*\[[^\]\n]*(Webster|WordNet|PJC|Century Dict|Chambers)[^\]\n]*\]\s*$", "",
                          body, flags=re.MULTILINE)
            body = re.sub(r"\n{3,}", "\n\n", textwrap.dedent(body)).strip()
            if len(body) >= 40:
                yield Document("gcide", doc_id, f"{head.strip()}\n\n{body}")

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
        Source(
            "kjv", "bible-kjv-text", "usr/lib/bible.data",
            "public domain (1611 translation); packaging GPL-2+",
            "The King James Bible (1611), read from bible-kjv-text's compressed data file",
            read_kjv,
        ),
        Source(
            "fortunes", "fortunes", "usr/share/games/fortunes",
            "BSD-3-Clause (fortune-mod collection, Debian main); quotations attributed to their "
            "authors",
            "BSD fortune cookie files (quotations, jokes, definitions); art, Pratchett, Star Trek, "
            "Zippy, song and translate-me files left out",
            read_fortunes,
        ),
        Source(
            "debref", "debian-reference-en", "usr/share/debian-reference/debian-reference.en.txt.gz",
            "GPL-2+", "Osamu Aoki, Debian Reference (plain-text edition, 2.100)",
            read_debian_reference,
        ),
        Source(
            "pydoc", "python3.11-doc", "usr/share/doc/python3.11/html",
            "PSF-2.0 (Python Software Foundation License, documentation)",
            "The Python 3.11 documentation (tutorial, library, reference, HOWTOs), text of the HTML",
            read_python_docs,
        ),
        Source(
            "gcide", "dict-gcide", "usr/share/dictd/gcide.dict.dz",
            "GPL-2+ (GCIDE, from Webster's 1913 and WordNet)",
            "GNU Collaborative International Dictionary of English: a deterministic 50% sample of "
            "its entries", read_gcide(0.5),
        ),
    ]
}

# Named corpora. "default" is exactly the corpus of the shipped GPT-2 model (tefviz-lm).
CORPORA: dict[str, list[str]] = {
    "default": ["austen", "foldoc", "jargon", "devil"],
    # the Debian Reference is left out: with KJV Genesis it is an outside evaluation text
    "broad": ["austen", "foldoc", "jargon", "devil", "kjv", "fortunes", "pydoc", "gcide"],
}


# --- fetching ------------------------------------------------------------------------


def locate_source(source: Source, cache_dir: Path) -> Path:
    """The source's data file: installed system-wide, or unpacked from its .deb.

    `apt-get download` needs no root and no dependency resolution, so the R and
    dictd runtimes the packages depend on are never installed.
    """
    for root in (Path("/"), cache_dir / "root"):
        if (root / source.path).exists():  # a file, or a directory of files
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
    if not path.exists():
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


def source_file_name(source: str) -> str:
    """A file-name-safe form of a source name ("file:my notes.txt" -> "file-my-notes.txt")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", source).strip("-") or "source"


def build_corpus(
    out_dir: Path,
    sources: list[str] | None = None,
    text_files: list[Path] | None = None,
    cache_dir: Path | None = None,
    hf_dataset: tuple[str, str | None] | None = None,
) -> dict:
    """Write train/valid/test text files and manifest.json; return the manifest.

    `sources` defaults to the "default" corpus (the one the shipped GPT-2 model was trained
    on). Each source's held-out documents are also written on their own, as
    `by_source/<split>.<source>.txt`, so a model can be scored per source.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_dir or out_dir / "debs"
    names = list(CORPORA["default"]) if sources is None else sources
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

    by_source_dir = out_dir / "by_source"
    shutil.rmtree(by_source_dir, ignore_errors=True)
    held_out: dict[str, dict[str, dict]] = {}
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
        if split == "train":
            continue
        by_source_dir.mkdir(exist_ok=True)
        for source in sorted({d.source for d in chosen}):
            part = "\n\n".join(d.text for d in chosen if d.source == source) + "\n"
            fname = f"{split}.{source_file_name(source)}.txt"
            (by_source_dir / fname).write_text(part, encoding="utf-8")
            held_out.setdefault(source, {})[split] = {
                "file": f"by_source/{fname}", "bytes": len(part.encode()),
                "documents": sum(1 for d in chosen if d.source == source),
            }
    manifest["held_out_by_source"] = held_out
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


PACKED_FILES = ("train.txt", "valid.txt", "test.txt")


def pack_corpus(corpus_dir: Path, out_dir: Path, extra: dict[str, Path] | None = None) -> dict[str, int]:
    """xz -9 copies of the splits plus the manifest, to carry the corpus to another machine.

    `extra` maps names to more files to copy as they are (e.g. a tokenizer). Returns sizes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name in PACKED_FILES:
        data = (corpus_dir / name).read_bytes()
        packed = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
        (out_dir / f"{name}.xz").write_bytes(packed)
        sizes[f"{name}.xz"] = len(packed)
    shutil.copy(corpus_dir / "manifest.json", out_dir / "manifest.json")
    for name, path in (extra or {}).items():
        shutil.copy(path, out_dir / name)
        sizes[name] = path.stat().st_size
    return sizes


def unpack_corpus(packed_dir: Path, corpus_dir: Path) -> None:
    """Inverse of `pack_corpus` for the splits and manifest."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name in PACKED_FILES:
        (corpus_dir / name).write_bytes(lzma.decompress((packed_dir / f"{name}.xz").read_bytes()))
    shutil.copy(packed_dir / "manifest.json", corpus_dir / "manifest.json")


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
