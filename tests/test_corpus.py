import gzip
import struct
import zlib
from pathlib import Path

import pytest

from tefviz.data import corpus
from tefviz.data.corpus import Document, build_corpus, split_of
from tefviz.data.heldout import heldout_samples
from tefviz.errors import DataError


def _r_character_vector(strings: list[str | None]) -> bytes:
    """R's XDR serialisation (v3) of a character vector, as saveRDS writes it."""
    out = b"X\n" + struct.pack(">iii", 3, 0x040201, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    out += struct.pack(">ii", 16, len(strings))
    for s in strings:
        if s is None:
            out += struct.pack(">ii", 9, -1)
        else:
            b = s.encode()
            out += struct.pack(">ii", 0x40009, len(b)) + b
    return out


def _lazyload_db(objects: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(o)) + zlib.compress(o) for o in objects)


def test_r_strings_roundtrip_with_na_and_unicode():
    strings = ["EMMA", "", "Chapter 1", "Naïve café — ‘quoted’", None]
    assert corpus._r_strings(_r_character_vector(strings)) == [
        "EMMA",
        "",
        "Chapter 1",
        "Naïve café — ‘quoted’",
        "",
    ]


def test_r_strings_rejects_other_payloads():
    with pytest.raises(DataError):
        corpus._r_strings(b"RDX2\n")


def test_austen_reader_splits_novels_into_chapters(tmp_path: Path):
    novel_a = [
        "PERSUASION",
        "",
        "Chapter 1",
        "",
        "Sir Walter Elliot, of Kellynch Hall,",
        "was a man.",
        "",
        "Another paragraph.",
        "Chapter 2",
        "",
        "Second chapter text.",
    ]
    novel_b = ["EMMA", "CHAPTER I", "Emma Woodhouse, handsome."]
    db = tmp_path / "Rdata.rdb"
    db.write_bytes(_lazyload_db([_r_character_vector(novel_a), _r_character_vector(novel_b)]))
    docs = list(corpus.read_austen(db))
    assert [d.doc_id for d in docs] == ["Persuasion/001", "Persuasion/002", "Emma/001"]
    # hard-wrapped lines are joined into one paragraph; paragraphs stay separate
    assert docs[0].text == "Sir Walter Elliot, of Kellynch Hall, was a man.\n\nAnother paragraph."


def test_dictd_reader_skips_header_and_reflows(tmp_path: Path):
    raw = (
        "00-database-short\n     Test dictionary\n"
        "kludge\n   A clever programming trick intended to solve a\n   particular nasty case "
        "in an expedient, if not clear, manner.\n"
        "x\n   short\n"
    )
    path = tmp_path / "t.dict.dz"
    path.write_bytes(gzip.compress(raw.encode()))
    docs = list(corpus.read_dictd("test")(path))
    assert len(docs) == 1  # header and too-short entries dropped
    assert docs[0].text.startswith("kludge\n\nA clever programming trick intended to solve a particular")


def test_split_is_deterministic_and_roughly_proportional():
    docs = [Document("s", str(i), "x") for i in range(20000)]
    splits = [split_of(d, 0.05, 0.05) for d in docs]
    assert splits == [split_of(d, 0.05, 0.05) for d in docs]
    assert 0.04 < splits.count("test") / len(docs) < 0.06
    assert 0.04 < splits.count("valid") / len(docs) < 0.06


def test_build_corpus_from_user_files(tmp_path: Path):
    src = tmp_path / "mine.txt"
    src.write_text("\n\n\n".join(f"Paragraph number {i} of my own text." for i in range(400)))
    manifest = build_corpus(tmp_path / "out", sources=[], text_files=[src])
    sizes = {k: v["documents"] for k, v in manifest["splits"].items()}
    assert sum(sizes.values()) == 400 and sizes["train"] > sizes["valid"]
    assert (tmp_path / "out" / "train.txt").read_text().count("Paragraph number") == sizes["train"]
    assert manifest["sources"][0]["licence"] == "as the user's files"


def test_unknown_source_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="unknown corpus source"):
        build_corpus(tmp_path, sources=["wikipedia"])


def test_shipped_heldout_sample_is_test_split_austen():
    samples = heldout_samples()
    assert len(samples) >= 3 and sum(len(s["text"]) for s in samples) > 40_000
    for s in samples:
        doc = Document("austen", s["id"], s["text"])
        assert corpus._split(doc) == "test", f"{s['id']} is not in the test split"


def test_hf_dataset_path_reads_rows_into_documents(tmp_path: Path):
    # the same datasets.load_dataset call as for `wikitext`, on local files (no network)
    import json

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps({"text": f" = Heading {i} = \n" if i % 10 == 0 else f"line {i}\n"}) for i in range(200)
        )
    )
    docs = list(corpus.read_hf_dataset("json", None, rows_per_doc=50, data_files=str(rows)))
    assert len(docs) == 4 and docs[0].source == "hf:json"
    assert docs[0].text.startswith("= Heading 0 =") and "line 49" in docs[0].text


def test_hf_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="could not load Hugging Face dataset 'no-such/dataset'"):
        list(corpus.read_hf_dataset("no-such/dataset"))


def test_named_corpora_keep_the_shipped_default():
    # the shipped GPT-2 model's corpus (tefviz-lm card) must stay exactly these sources
    assert corpus.CORPORA["default"] == ["austen", "foldoc", "jargon", "devil"]
    assert set(corpus.CORPORA["default"]) < set(corpus.CORPORA["broad"]) <= set(corpus.SOURCES)
    for name in corpus.CORPORA["broad"]:
        src = corpus.SOURCES[name]
        assert src.package and src.licence and src.description


def test_per_source_held_out_files_add_up(tmp_path: Path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n\n\n".join(f"Alpha paragraph {i}." for i in range(300)))
    b.write_text("\n\n\n".join(f"Beta paragraph {i}." for i in range(300)))
    out = tmp_path / "out"
    manifest = build_corpus(out, sources=[], text_files=[a, b])
    held = manifest["held_out_by_source"]
    assert set(held) == {"file:a.txt", "file:b.txt"}
    for split in ("valid", "test"):
        total = sum(held[s][split]["documents"] for s in held if split in held[s])
        assert total == manifest["splits"][split]["documents"]
        for s in held:
            text = (out / held[s][split]["file"]).read_text()
            assert text.count("paragraph") == held[s][split]["documents"]
            assert ("Alpha" in text) != ("Beta" in text)  # one source per file


def test_lzw_bible_reader_round_trip(tmp_path: Path):
    # a .Z stream made with the same scheme (LZW, 9..16 bits, block mode) by a tiny encoder
    def compress(data: bytes) -> bytes:
        table = {bytes([i]): i for i in range(256)}
        free, n_bits, w = 257, 9, b""
        bits = []
        for byte in data:
            wc = w + bytes([byte])
            if wc in table:
                w = wc
                continue
            bits.append((table[w], n_bits))
            table[wc] = free
            free += 1
            if free > (1 << n_bits) and n_bits < 16:
                bits.append(("grow", n_bits))
                n_bits += 1
            w = bytes([byte])
        bits.append((table[w], n_bits))
        acc, nacc, group_start, pos = 0, 0, 0, 0
        for code, width in bits:
            if code == "grow":
                used = (pos - group_start) % (width * 8)
                pad = width * 8 - used if used else 0
                pos += pad
                nacc += pad
                group_start = pos
                continue
            acc |= code << nacc
            nacc += width
            pos += width
        return acc.to_bytes((nacc + 7) // 8, "little")

    text = (
        "Ge1:1 In the beginning God created the heaven and the earth.\n"
        "Exo1:1 Now these are the names.\nExo2:1 And there went a man.\n"
    ) * 300
    window = 4096
    raw = text.encode()
    windows = [compress(raw[i : i + window]) for i in range(0, len(raw), window)]
    header = bytearray(b"EC02Compressed Data File".ljust(0x54, b"\0"))
    header += struct.pack(">ii", window, len(windows))
    start = len(header) + 4 * (len(windows) + 1)
    offsets = [start]
    for w in windows:
        offsets.append(offsets[-1] + len(w))
    data = bytes(header) + struct.pack(f">{len(offsets)}i", *offsets) + b"".join(windows)
    assert corpus.read_brs_text(data) == text
    path = tmp_path / "bible.data"
    path.write_bytes(data)
    docs = list(corpus.read_kjv(path))
    # Genesis is an outside evaluation text: never in a training corpus
    assert [d.doc_id for d in docs] == ["Exo/001", "Exo/002"]
    assert docs[0].text.startswith("Exo 1\n\nNow these are the names")


def test_html_sections_drop_navigation_and_split_at_headings():
    html = """<html><body><div class="related">nav</div><div role="main"><section>
    <h1>Title<a class="headerlink">¶</a></h1><p>First   paragraph
    wrapped.</p><pre>code  line 1
    line 2</pre><h2>Second</h2><p>More <em>text</em>.</p><script>x()</script></section></div></body></html>"""
    sections = corpus.html_sections(html, ("role", "main"))
    assert sections == [
        "Title\n\nFirst paragraph wrapped.\n\ncode  line 1\n    line 2",
        "Second\n\nMore text.",
    ]
