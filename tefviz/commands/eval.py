"""`python -m tefviz eval {lm,text,generate,images,approx}`: the README's tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tefviz.commands import Command, add_image_checkpoints, image_checkpoints

HELP = "evaluate models"


def _add_lm(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint directory or Hugging Face name")
    p.add_argument("--corpus", type=Path, default=None, help="corpus dir (default: shipped held-out)")


def _run_lm(args: argparse.Namespace) -> None:
    from tefviz.models import load_causal_lm
    from tefviz.train.export import evaluate_lm

    lm = load_causal_lm(args.model)
    print(json.dumps(evaluate_lm(lm, args.corpus), indent=1))


def _add_texts(p: argparse.ArgumentParser, tef_help: str) -> None:
    """The LM, TEF checkpoints and texts `eval text` and `eval generate` both take."""
    from tefviz.data.heldout import SAMPLE_FILES

    p.add_argument("--lm", default="checkpoints/tefviz-lm", help="the base LM")
    p.add_argument("--tef", type=Path, action="append", default=[], help=tef_help)
    p.add_argument(
        "--sample",
        dest="samples",
        action="append",
        default=[],
        choices=[*SAMPLE_FILES, "all"],
        help="a shipped held-out sample (repeat; 'all' for every domain; default: austen "
        "unless --text-file is given)",
    )
    p.add_argument(
        "--text-file",
        dest="text_files",
        type=Path,
        action="append",
        default=[],
        help="any UTF-8 text file to evaluate (repeat)",
    )


def _add_text(p: argparse.ArgumentParser) -> None:
    _add_texts(p, "TEF checkpoint dir (repeat)")
    p.add_argument("--windows", type=int, default=None, help="at most this many windows")
    p.add_argument("--block", type=int, default=512)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/eval_text.json"),
        help="JSON: one text's table, or {lm, texts: [table, ...]} for several",
    )
    p.add_argument("--write-cards", action="store_true", help="store the table in each TEF card")
    p.add_argument(
        "--budget",
        action="store_true",
        help="compare at fixed kept fractions (each query keeps the same share of its prefix under every "
        "method, a cache budget) instead of at thresholds t on each method's own scores",
    )


def _run_text(args: argparse.Namespace) -> None:
    from tefviz.text.cli_eval import eval_text

    eval_text(
        lm_name=args.lm,
        tef_dirs=args.tef,
        out=args.out,
        windows=args.windows,
        block=args.block,
        write_cards=args.write_cards,
        samples=args.samples,
        text_files=args.text_files,
        budget=args.budget,
    )


def _add_generate(p: argparse.ArgumentParser) -> None:
    _add_texts(p, "causal TEF checkpoint dir (repeat)")
    p.add_argument("--prompts", type=int, default=4, help="prompts per text, spread over it")
    p.add_argument("--prompt-tokens", type=int, default=384)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--budget", type=int, default=None, help="cache entries per layer (default: prompt / 2)")
    p.add_argument("--out", type=Path, default=Path("artifacts/eval_generate.json"))


def _run_generate(args: argparse.Namespace) -> None:
    from tefviz.generate.evaluate import eval_generate

    eval_generate(
        args.lm,
        args.tef,
        args.out,
        samples=args.samples,
        text_files=args.text_files,
        prompts=args.prompts,
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        budget=args.budget,
    )


def _add_images(p: argparse.ArgumentParser) -> None:
    add_image_checkpoints(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N subset images")
    p.add_argument("--out", type=Path, default=Path("artifacts/eval_images.json"))
    p.add_argument("--write-cards", action="store_true", help="store the table in each card")


def _run_images(args: argparse.Namespace) -> None:
    from tefviz.images.evaluate import eval_images

    eval_images(image_checkpoints(args.checkpoint), args.out, write_cards=args.write_cards, limit=args.limit)
    print(f"saved {args.out}")


def _add_approx(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lm", default="checkpoints/tefviz-lm")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256], help="m, k or N")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("artifacts/eval_approx.json"))


def _run_approx(args: argparse.Namespace) -> None:
    from tefviz.attention.approx_eval import eval_approx

    eval_approx(args.lm, args.out, tokens=args.tokens, sizes=tuple(args.sizes), seeds=args.seeds)


COMMANDS = {
    "lm": Command("perplexity and bits per byte of a checkpoint or hub model", _add_lm, _run_lm),
    "text": Command(
        "Table 1 analogue: perplexity and tokens kept vs t, every scorer, with per-window "
        "paired comparisons against the best baseline",
        _add_text,
        _run_text,
    ),
    "generate": Command(
        "generation with an evicted KV cache on several texts: per-step KL to dense per policy at one "
        "cache budget, paired against the best baseline over prompts",
        _add_generate,
        _run_generate,
    ),
    "images": Command(
        "Table 2 analogue: accuracy, macro-F1, tokens per setting, every tokenizer", _add_images, _run_images
    ),
    "approx": Command(
        "each attention approximation's error on the LM's real q, k, v", _add_approx, _run_approx
    ),
}
