"""`python -m tefviz data {build,heldout}`: the training corpus and the shipped held-out sample."""

from __future__ import annotations

import argparse
from pathlib import Path

from tefviz.commands import Command
from tefviz.errors import InputError

HELP = "assemble the training corpus"


def _add_build(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        default="default",
        help="named source set: default (the shipped GPT-2 model's corpus) or broad",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: data/corpus, or data/corpus-<name> for another --corpus",
    )
    p.add_argument("--cache", type=Path, default=Path("data/debs"))
    p.add_argument(
        "--sources",
        nargs="*",
        default=None,
        help="these sources instead of the --corpus set (see tefviz/data/corpus.py)",
    )
    p.add_argument(
        "--pack",
        type=Path,
        default=None,
        help="also write xz -9 copies of the splits + manifest here (to carry to a GPU machine)",
    )
    p.add_argument(
        "--text-files",
        nargs="*",
        type=Path,
        default=None,
        help="your own UTF-8 text files, added as extra documents",
    )
    p.add_argument(
        "--hf-dataset", default=None, help="also add a Hugging Face dataset (needs network), e.g. wikitext"
    )
    p.add_argument("--hf-config", default=None, help="its config, e.g. wikitext-103-raw-v1")


def _run_build(args: argparse.Namespace) -> None:
    from tefviz.data.corpus import CORPORA, build_corpus, pack_corpus

    if args.corpus not in CORPORA:
        raise InputError(f"unknown corpus {args.corpus!r}; known: {sorted(CORPORA)}")
    out = args.out or Path("data/corpus" if args.corpus == "default" else f"data/corpus-{args.corpus}")
    sources = args.sources if args.sources is not None else CORPORA[args.corpus]
    hf = (args.hf_dataset, args.hf_config) if args.hf_dataset else None
    manifest = build_corpus(
        out, sources=sources, text_files=args.text_files, cache_dir=args.cache, hf_dataset=hf
    )
    for src in manifest["sources"]:
        print(
            f"{src['name']:10s} {src['documents']:7d} documents, {src['characters'] / 1e6:6.2f} M chars"
            f"  ({src.get('licence', '?')})"
        )
    for split, info in manifest["splits"].items():
        print(f"{split:5s}: {info['documents']:6d} documents, {info['bytes'] / 1e6:6.2f} MB")
    print(f"wrote {out}")
    if args.pack:
        sizes = pack_corpus(out, args.pack)
        total = sum(v for k, v in sizes.items() if k.endswith(".xz"))
        print(f"packed into {args.pack}: {total / 2**20:.1f} MiB of xz")


def _add_heldout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("tefviz/assets/heldout_austen.json"))
    p.add_argument("--cache", type=Path, default=Path("data/debs"))


def _run_heldout(args: argparse.Namespace) -> None:
    from tefviz.data.corpus import austen_heldout

    austen_heldout(args.out, args.cache)
    print(f"wrote {args.out}")


COMMANDS = {
    "build": Command("write train/valid/test splits from offline sources", _add_build, _run_build),
    "heldout": Command("write the shipped public-domain held-out sample", _add_heldout, _run_heldout),
}
