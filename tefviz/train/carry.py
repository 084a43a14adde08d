"""Carry a training run to a lent machine and back.

A lent GPU machine gets the corpus as xz files plus the tokenizer (`python -m tefviz data build
--corpus broad --pack DIR`, then `tokenizer` below) and returns at most a handful of files of at
most 16 MiB each. `pack` writes a run's weights as fp16 shards that fit, with its config and
progress; `assemble` turns them back into a run directory (`state/`, `tokenizer/`) that
`python -m tefviz export lm` reads. Adam's moments are not carried: a resumed run starts a fresh
optimiser (and says so).

    python -m tefviz.train.carry tokenizer data/corpus-broad data/carry/corpus-broad/tokenizer \\
        --vocab-size 8192
    python -m tefviz.train.carry pack runs/llama $OUT/llama
    python -m tefviz.train.carry assemble FILES_AT/llama runs/llama \\
        --tokenizer data/carry/corpus-broad/tokenizer
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tefviz.errors import DataError

SHARD_BYTES = 15 * 2**20  # under the 16 MiB a returned file may have
SHARD = "model-{:02d}-of-{:02d}.safetensors"
SHARD_RE = re.compile(r"^model-(\d+)-of-(\d+)\.safetensors$")


def make_tokenizer(corpus_dir: Path, out_dir: Path, vocab_size: int) -> Path:
    """The run's tokenizer, trained exactly as `train lm` would train it (on the train split)."""
    from tefviz.train.tokenizer import train_bpe

    train_bpe([corpus_dir / "train.txt"], vocab_size).save_pretrained(out_dir)
    return out_dir


def pack_state(
    run_dir: Path, out_dir: Path, max_bytes: int = SHARD_BYTES, dtype: torch.dtype = torch.float16
) -> list[Path]:
    """fp16 weight shards of at most `max_bytes`, plus config.json and progress.json, flat in `out_dir`."""
    state = run_dir / "state"
    weights = load_file(state / "model.safetensors")
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(weights):
        t = weights[name]
        t = t.to(dtype) if t.is_floating_point() else t
        n = t.numel() * t.element_size()
        if n > max_bytes:
            raise DataError(
                f"tensor {name} alone is {n / 2**20:.1f} MiB, over the "
                f"{max_bytes / 2**20:.0f} MiB limit per file"
            )
        if size + n > max_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = t.contiguous()
        size += n
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("model-*-of-*.safetensors"):
        old.unlink()
    written = []
    for i, shard in enumerate(shards, 1):
        path = out_dir / SHARD.format(i, len(shards))
        save_file(shard, path, metadata={"format": "pt", "carried_dtype": str(dtype)})
        written.append(path)
    for name in ("config.json", "progress.json"):
        shutil.copy(state / name, out_dir / name)
        written.append(out_dir / name)
    return written


def assemble_state(src_dir: Path, run_dir: Path, tokenizer_dir: Path | None = None) -> Path:
    """Rebuild `run_dir/state/` (fp32 weights, config, progress) and `run_dir/tokenizer/` from
    `pack_state`'s files."""
    shards = sorted(p for p in src_dir.iterdir() if SHARD_RE.match(p.name))
    if not shards:
        raise DataError(f"no weight shards (model-NN-of-NN.safetensors) in {src_dir}")
    expected = int(SHARD_RE.match(shards[0].name)[2])
    if len(shards) != expected:
        raise DataError(f"{src_dir} has {len(shards)} of {expected} weight shards")
    weights: dict[str, torch.Tensor] = {}
    for path in shards:
        for name, t in load_file(path).items():
            weights[name] = t.float() if t.is_floating_point() else t
    state = run_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    save_file(weights, state / "model.safetensors")
    for name in ("config.json", "progress.json"):
        shutil.copy(src_dir / name, state / name)
    stale = state / "optimizer.pt"
    if stale.exists():
        stale.unlink()  # it belonged to other weights
    if tokenizer_dir is not None:
        tok = run_dir / "tokenizer"
        shutil.rmtree(tok, ignore_errors=True)
        shutil.copytree(tokenizer_dir, tok)
    elif not (run_dir / "tokenizer" / "tokenizer.json").is_file():
        raise DataError(f"{run_dir} has no tokenizer/: pass --tokenizer (the one carried with the corpus)")
    progress = json.loads((state / "progress.json").read_text())
    print(
        f"assembled {run_dir}: step {progress['step']}, {len(weights)} tensors from {len(shards)} shards",
        file=sys.stderr,
    )
    return run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tefviz.train.carry",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenizer", help="train the BPE a run on this corpus would train")
    t.add_argument("corpus", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--vocab-size", type=int, required=True)
    k = sub.add_parser("pack", help="a run's state as fp16 shards + config + progress")
    k.add_argument("run_dir", type=Path)
    k.add_argument("out", type=Path)
    k.add_argument("--max-mib", type=float, default=SHARD_BYTES / 2**20)
    a = sub.add_parser("assemble", help="shards back into RUN_DIR/state (and RUN_DIR/tokenizer)")
    a.add_argument("src", type=Path)
    a.add_argument("run_dir", type=Path)
    a.add_argument("--tokenizer", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        if args.cmd == "tokenizer":
            make_tokenizer(args.corpus, args.out, args.vocab_size)
        elif args.cmd == "pack":
            for path in pack_state(args.run_dir, args.out, int(args.max_mib * 2**20)):
                print(f"{path}  {path.stat().st_size / 2**20:.2f} MiB")
        else:
            assemble_state(args.src, args.run_dir, args.tokenizer)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
