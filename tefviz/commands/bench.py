"""`python -m tefviz bench {lm,text,generate,attention,approx,images,serve}`: print and save JSON.
Method choices come from the registries (patterns, approximations) and the benchmarks' own lists."""

from __future__ import annotations

import argparse
from pathlib import Path

from tefviz.commands import Command, add_image_checkpoints, image_checkpoints
from tefviz.commands.fields import name_int

HELP = "benchmarks (print and save JSON)"


def _add_timing(p: argparse.ArgumentParser, tokens: int, out: str) -> None:
    p.add_argument("--tokens", type=int, default=tokens)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(f"artifacts/{out}.json"))


def _add_lm(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default="tefviz-lm")
    _add_timing(p, 512, "bench_lm")


def _run_lm(args: argparse.Namespace) -> None:
    from tefviz.bench import bench_lm

    bench_lm(args.model, args.out, tokens=args.tokens, repeats=args.repeats)


def _add_text(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default="checkpoints/tefviz-lm")
    p.add_argument("--tef", type=Path, action="append", default=[], help="TEF checkpoint dir (repeat)")
    _add_timing(p, 512, "bench_text")


def _run_text(args: argparse.Namespace) -> None:
    from tefviz.bench import bench_text

    bench_text(args.model, args.tef, args.out, tokens=args.tokens, repeats=args.repeats)


def _add_generate(p: argparse.ArgumentParser) -> None:
    from tefviz.generate.bench import BASELINES

    p.add_argument("model", nargs="?", default="checkpoints/tefviz-llama")
    p.add_argument("--tef", type=Path, default=None, help="causal TEF checkpoint (adds tef_causal)")
    p.add_argument("--tokens", type=int, default=2048, help="prompt + generated tokens")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--budget", type=int, default=None, help="cache entries per layer (default: prompt / 2)")
    p.add_argument("--policies", nargs="*", default=list(BASELINES), choices=BASELINES)
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_generate.json"))


def _run_generate(args: argparse.Namespace) -> None:
    from tefviz.generate.bench import bench_generate

    bench_generate(
        args.model,
        args.out,
        tokens=args.tokens,
        new_tokens=args.new_tokens,
        budget=args.budget,
        policies=tuple(args.policies),
        tef=args.tef,
    )


def _add_heads(p: argparse.ArgumentParser, heads: int) -> None:
    p.add_argument("--heads", type=int, default=heads)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)


def _add_attention(p: argparse.ArgumentParser) -> None:
    from tefviz.attention.bench import IMPLEMENTATIONS
    from tefviz.attention.patterns import PATTERNS

    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--pattern", default="sliding", choices=PATTERNS.names())
    p.add_argument(
        "--window",
        type=int,
        default=256,
        help="causal sliding window: each token sees the WINDOW tokens before it and itself",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        type=name_int,
        metavar="NAME=INT",
        help="other pattern parameters (repeat)",
    )
    p.add_argument(
        "--impl", action="append", default=None, choices=IMPLEMENTATIONS, help="repeat; default all"
    )
    _add_heads(p, 12)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_attention.json"))


def _run_attention(args: argparse.Namespace) -> None:
    from tefviz.attention.bench import IMPLEMENTATIONS, bench_attention, print_table

    params = dict(args.param)
    if args.pattern == "sliding":
        params = {"window": args.window, "causal": 1, **params}
    results = bench_attention(
        args.lengths,
        args.pattern,
        params,
        tuple(args.impl or IMPLEMENTATIONS),
        heads=args.heads,
        head_dim=args.head_dim,
        repeats=args.repeats,
        dtype=args.dtype,
        out=args.out,
    )
    print_table(results)  # save_results already said where the JSON went


def _add_approx(p: argparse.ArgumentParser) -> None:
    from tefviz.attention.approx_bench import METHODS

    p.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192, 16384, 32768])
    p.add_argument("--method", action="append", default=None, choices=METHODS, help="repeat; default all")
    _add_heads(p, 1)
    p.add_argument("--causal", action="store_true", help="causal exact and Performer only")
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_approx.json"))


def _run_approx(args: argparse.Namespace) -> None:
    from tefviz.attention.approx_bench import METHODS, bench_approx, print_table

    results = bench_approx(
        args.lengths,
        tuple(args.method or METHODS),
        heads=args.heads,
        head_dim=args.head_dim,
        repeats=args.repeats,
        causal=args.causal,
        out=args.out,
    )
    print_table(results)  # save_results already said where the JSON went


def _add_images(p: argparse.ArgumentParser) -> None:
    add_image_checkpoints(p)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_images.json"))


def _run_images(args: argparse.Namespace) -> None:
    from tefviz.images.bench import bench_images

    bench_images(image_checkpoints(args.checkpoint), args.out, repeats=args.repeats)


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-sessions", type=int, default=24, help="sessions on the Text page")
    p.add_argument("--images-sessions", type=int, default=6, help="sessions on the Images page")
    p.add_argument("--moves", type=int, default=5, help="slider moves per session, made in rounds")
    p.add_argument("--move-timeout", type=float, default=120.0, help="seconds before a run counts as failed")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop after this many seconds in all and report what completed",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="checkpoints dir for the server it starts (default: the repository's checkpoints/)",
    )
    p.add_argument(
        "--url",
        default=None,
        help="target an app already running on this machine (127.0.0.1, localhost or ::1 only)",
    )
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_serve.json"))


def _run_serve(args: argparse.Namespace) -> None:
    from tefviz.serve_bench import ServeBenchOptions, run_serve_bench

    run_serve_bench(
        ServeBenchOptions(
            text_sessions=args.text_sessions,
            images_sessions=args.images_sessions,
            moves=args.moves,
            move_timeout_s=args.move_timeout,
            max_seconds=args.max_seconds,
            checkpoints=args.checkpoints,
            url=args.url,
            out=args.out,
        )
    )


COMMANDS = {
    "lm": Command("checkpoint load time; forward pass fp32 vs bf16", _add_lm, _run_lm),
    "text": Command("Text page costs: scoring pass vs filtered pass per scorer", _add_text, _run_text),
    "generate": Command(
        "evicted-KV-cache decoding vs dense: speed, cache bytes, KL", _add_generate, _run_generate
    ),
    "attention": Command(
        "dense vs mask SDPA vs compiled flex vs block gather, by length", _add_attention, _run_attention
    ),
    "approx": Command(
        "exact attention vs Performer, Linformer, infinity-former by length", _add_approx, _run_approx
    ),
    "images": Command(
        "Images page costs: re-render per setting, subset evaluation, throughput", _add_images, _run_images
    ),
    "serve": Command("load test: N browser sessions move the same sliders at once", _add_serve, _run_serve),
}
