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
    assert corpus._r_strings(_r_character_vector(strings)) == ["EMMA", "", "Chapter 1",
                                                                "Naïve café — ‘quoted’", ""]


def test_r_strings_rejects_other_payloads():
    with pytest.raises(DataError):
        corpus._r_strings(b"RDX2\n")


def test_austen_reader_splits_novels_into_chapters(tmp_path: Path):
    novel_a = ["PERSUASION", "", "Chapter 1", "", "Sir Walter Elliot, of Kellynch Hall,", "was a man.",
               "", "Another paragraph.", "Chapter 2", "", "Second chapter text."]
    novel_b = ["EMMA", "CHAPTER I", "Emma Woodhouse, handsome."]
    db = tmp_path / "Rdata.rdb"
    db.write_bytes(_lazyload_db([_r_character_vector(novel_a), _r_character_vector(novel_b)]))
    docs = list(corpus.read_austen(db))
    assert [d.doc_id for d in docs] == ["Persuasion/001", "Persuasion/002", "Emma/001"]
    # hard-wrapped lines are joined into one paragraph; paragraphs stay separate
    assert docs[0].text == "Sir Walter Elliot, of Kellynch Hall, was a man.\n\nAnother paragraph."


def test_dictd_reader_skips_header_and_reflows(tmp_path: Path):
    raw = ("00-database-short\n     Test dictionary\n"
           "kludge\n   A clever programming trick intended to solve a\n   particular nasty case "
           "in an expedient, if not clear, manner.\n"
           "x\n   short\n")
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
    rows.write_text("\n".join(json.dumps({"text": f" = Heading {i} = \n" if i % 10 == 0 else f"line {i}\n"})
                              for i in range(200)))
    docs = list(corpus.read_hf_dataset("json", None, rows_per_doc=50, data_files=str(rows)))
    assert len(docs) == 4 and docs[0].source == "hf:json"
    assert docs[0].text.startswith("= Heading 0 =") and "line 49" in docs[0].text


def test_hf_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="could not load Hugging Face dataset 'no-such/dataset'"):
        list(corpus.read_hf_dataset("no-such/dataset"))
