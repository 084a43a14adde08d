"""Command line: `python -m tefviz {data,train,export,eval,info} ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tefviz.errors import InputError, TefvizError


def _int_settings(items: list[str], flag: str) -> dict[str, int]:
    """["name=3", ...] -> {"name": 3}, or a clear error naming the flag."""
    out: dict[str, int] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = int(value)
        except ValueError as e:
            raise InputError(f"{flag} takes name=integer, got {item!r}") from e
    return out


def _cmd_data_build(args: argparse.Namespace) -> None:
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
        print(f"{src['name']:10s} {src['documents']:7d} documents, {src['characters'] / 1e6:6.2f} M chars"
              f"  ({src.get('licence', '?')})")
    for split, info in manifest["splits"].items():
        print(f"{split:5s}: {info['documents']:6d} documents, {info['bytes'] / 1e6:6.2f} MB")
    print(f"wrote {out}")
    if args.pack:
        sizes = pack_corpus(out, args.pack)
        total = sum(v for k, v in sizes.items() if k.endswith(".xz"))
        print(f"packed into {args.pack}: {total / 2**20:.1f} MiB of xz")


def _cmd_data_heldout(args: argparse.Namespace) -> None:
    from tefviz.data.corpus import austen_heldout

    austen_heldout(args.out, args.cache)
    print(f"wrote {args.out}")


def _cmd_train_lm(args: argparse.Namespace) -> None:
    from tefviz.train.lm import PRESETS, TrainConfig, train_lm

    preset = args.preset or ("llama-small" if args.arch == "llama" else "small")
    values = dict(PRESETS[preset])
    if args.arch is not None and args.arch != values.get("arch", "gpt2"):
        raise InputError(f"preset {preset!r} is a {values.get('arch', 'gpt2')} model, not {args.arch}")
    for key in ("n_layer", "n_embd", "n_head", "block_size", "vocab_size", "batch_size", "lr", "dropout",
                "max_steps", "max_minutes", "eval_every", "seed", "device", "dtype", "n_kv_head",
                "intermediate_size", "rope_theta", "finish_by", "save_every", "eval_windows",
                "warmup_steps"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if values.get("arch") == "llama":
        values["extra"] = {"preset": preset}  # for the card (GPT-2 runs keep their config as it was)
    cfg = TrainConfig(corpus_dir=args.corpus, run_dir=args.run_dir, argv=args.argv, **values)
    train_lm(cfg)
    if args.export:
        from tefviz.train.export import export_lm

        export_lm(args.run_dir, args.export, preset=preset)


def _cmd_train_tef(args: argparse.Namespace) -> None:
    from tefviz.train.tef import TEFTrainConfig, export_tef, train_tef

    values = {k: getattr(args, k) for k in ("steps", "batch_size", "block_size", "lr", "lr_heads", "t",
                                            "tau", "recent", "gate_l1", "seed", "max_minutes")
              if getattr(args, k) is not None}
    cfg = TEFTrainConfig(variant=args.variant, base=args.base, corpus_dir=args.corpus,
                         run_dir=args.run_dir or Path(f"runs/tef-{args.variant}"), sink=not args.no_sink,
                         argv=args.argv, **values)
    train_tef(cfg)
    if args.export:
        export_tef(cfg.run_dir, args.export)


def _cmd_export_tef(args: argparse.Namespace) -> None:
    from tefviz.train.tef import export_tef

    card = export_tef(args.run_dir, args.out, command=args.command)
    print(f"wrote {args.out} ({card['variant']} TEF, {card['training']['steps']} steps)")


def _cmd_eval_text(args: argparse.Namespace) -> None:
    from tefviz.text.cli_eval import eval_text

    eval_text(lm_name=args.lm, tef_dirs=args.tef, out=args.out, windows=args.windows,
              block=args.block, write_cards=args.write_cards, samples=args.samples,
              text_files=args.text_files)


def _cmd_train_images(args: argparse.Namespace) -> None:
    from tefviz.train.images import ImageTrainConfig, export_images, train_images
    from tefviz.train.lm import command_line

    values = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "gate_l1", "dim", "depth", "heads",
                                            "patch", "train_images", "tnt_layer", "tnt_noise", "max_minutes",
                                            "seed", "train_t_min", "warmup_steps")
              if getattr(args, k) is not None}
    run_dir = args.run_dir or Path(f"runs/images-{'tnt' if args.tnt else args.tokenizer}")
    cfg = ImageTrainConfig(tokenizer="patch" if args.tnt else args.tokenizer, run_dir=run_dir, tnt=args.tnt,
                           base=args.base, init=args.init, argv=[command_line(args.argv)], **values)
    train_images(cfg)
    if args.export:
        export_images(run_dir, args.export, command=args.command)


def _cmd_train_embeddings(args: argparse.Namespace) -> None:
    from tefviz.embeddings.finetune import FinetuneConfig, finetune_embedding
    from tefviz.train.lm import command_line

    knobs = _int_settings(args.knob, "--knob")
    values = {k: getattr(args, k) for k in ("steps", "batch_size", "block_size", "lr", "heldout_windows",
                                            "max_minutes", "seed") if getattr(args, k) is not None}
    cfg = FinetuneConfig(method=args.method, knobs=knobs, base=args.base, corpus_dir=args.corpus,
                         run_dir=args.run_dir or Path(f"runs/embeddings-{args.method}"),
                         command=command_line(args.argv), **values)
    result = finetune_embedding(cfg)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print(f"saved {args.out}")


def _cmd_export_images(args: argparse.Namespace) -> None:
    from tefviz.train.images import export_images

    card = export_images(args.run_dir, args.out, command=args.command)
    print(f"wrote {args.out} (validation accuracy {card['metrics']['valid_accuracy']:.4f})")


def _cmd_eval_images(args: argparse.Namespace) -> None:
    from tefviz.checkpoints import checkpoints_root
    from tefviz.images.evaluate import eval_images

    dirs = args.checkpoint or sorted(p.parent for p in checkpoints_root().glob("*/preprocessor_config.json"))
    if not dirs:
        raise InputError("no image checkpoints found; train one with `python -m tefviz train images`")
    eval_images(dirs, args.out, write_cards=args.write_cards, limit=args.limit)
    print(f"saved {args.out}")


def _cmd_bench_images(args: argparse.Namespace) -> None:
    from tefviz.checkpoints import checkpoints_root
    from tefviz.images.bench import bench_images

    dirs = args.checkpoint or sorted(p.parent for p in checkpoints_root().glob("*/preprocessor_config.json"))
    if not dirs:
        raise InputError("no image checkpoints found; train one with `python -m tefviz train images`")
    bench_images(dirs, args.out, repeats=args.repeats)


def _cmd_eval_approx(args: argparse.Namespace) -> None:
    from tefviz.attention.approx_eval import eval_approx

    eval_approx(args.lm, args.out, tokens=args.tokens, sizes=tuple(args.sizes), seeds=args.seeds)


def _cmd_export_lm(args: argparse.Namespace) -> None:
    from tefviz.train.export import export_lm

    card = export_lm(args.run_dir, args.out, command=args.command, preset=args.preset)
    print(json.dumps(card["metrics"], indent=1))


def _cmd_eval_lm(args: argparse.Namespace) -> None:
    from tefviz.models import load_causal_lm
    from tefviz.train.export import evaluate_lm

    lm = load_causal_lm(args.model)
    print(json.dumps(evaluate_lm(lm, args.corpus), indent=1))


def _cmd_bench_lm(args: argparse.Namespace) -> None:
    from tefviz.bench import bench_lm

    bench_lm(args.model, args.out, tokens=args.tokens, repeats=args.repeats)


def _cmd_bench_text(args: argparse.Namespace) -> None:
    from tefviz.bench import bench_text

    bench_text(args.model, args.tef, args.out, tokens=args.tokens, repeats=args.repeats)


GENERATE_POLICIES = ("streaming_llm", "h2o", "tova", "key_norm", "tef_causal")


def _cmd_bench_generate(args: argparse.Namespace) -> None:
    from tefviz.generate.bench import bench_generate

    bench_generate(args.model, args.out, tokens=args.tokens, new_tokens=args.new_tokens,
                   budget=args.budget, policies=tuple(args.policies), tef=args.tef)


def _cmd_bench_attention(args: argparse.Namespace) -> None:
    from tefviz.attention.bench import IMPLEMENTATIONS, bench_attention, print_table

    params = _int_settings(args.param, "--param")
    if args.pattern == "sliding":
        params = {"window": args.window, "causal": 1, **params}
    results = bench_attention(args.lengths, args.pattern, params, tuple(args.impl or IMPLEMENTATIONS),
                              heads=args.heads, head_dim=args.head_dim, repeats=args.repeats,
                              dtype=args.dtype, out=args.out)
    print_table(results)
    print(f"saved {args.out}")


def _cmd_bench_approx(args: argparse.Namespace) -> None:
    from tefviz.attention.approx_bench import METHODS, bench_approx, print_table

    results = bench_approx(args.lengths, tuple(args.method or METHODS), heads=args.heads,
                           head_dim=args.head_dim, repeats=args.repeats, causal=args.causal, out=args.out)
    print_table(results)
    print(f"saved {args.out}")


def _cmd_bench_serve(args: argparse.Namespace) -> None:
    from tefviz.serve_bench import ServeBenchOptions, run_serve_bench

    run_serve_bench(ServeBenchOptions(
        text_sessions=args.text_sessions, images_sessions=args.images_sessions, moves=args.moves,
        move_timeout_s=args.move_timeout, max_seconds=args.max_seconds, checkpoints=args.checkpoints,
        url=args.url, out=args.out))


def _cmd_check_device(args: argparse.Namespace) -> None:
    from tefviz.device_check import check_device, exit_code

    report = check_device(args.out, args.only, args.budget_s, args.attention_lengths, args.approx_lengths,
                          args.dtype)
    if exit_code(report):
        raise SystemExit(1)


def _cmd_info(args: argparse.Namespace) -> None:
    from tefviz.checkpoints import list_checkpoints
    from tefviz.device import device_info

    info = device_info()
    print(f"device: {info.device} ({info.name}; {info.detail}); dtype {info.dtype} ({info.bf16_reason})")
    for ck in list_checkpoints(args.checkpoints):
        status = "ok" if ck.error is None else f"unusable: {ck.error}"
        print(f"{ck.name}: {status}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tefviz", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="assemble the training corpus").add_subparsers(
        dest="data_command", required=True)
    b = data.add_parser("build", help="write train/valid/test splits from offline sources")
    b.add_argument("--corpus", default="default",
                   help="named source set: default (the shipped GPT-2 model's corpus) or broad")
    b.add_argument("--out", type=Path, default=None,
                   help="default: data/corpus, or data/corpus-<name> for another --corpus")
    b.add_argument("--cache", type=Path, default=Path("data/debs"))
    b.add_argument("--sources", nargs="*", default=None,
                   help="these sources instead of the --corpus set (see tefviz/data/corpus.py)")
    b.add_argument("--pack", type=Path, default=None,
                   help="also write xz -9 copies of the splits + manifest here (to carry to a GPU machine)")
    b.add_argument("--text-files", nargs="*", type=Path, default=None,
                   help="your own UTF-8 text files, added as extra documents")
    b.add_argument("--hf-dataset", default=None,
                   help="also add a Hugging Face dataset (needs network), e.g. wikitext")
    b.add_argument("--hf-config", default=None, help="its config, e.g. wikitext-103-raw-v1")
    b.set_defaults(func=_cmd_data_build)
    h = data.add_parser("heldout", help="write the shipped public-domain held-out sample")
    h.add_argument("--out", type=Path, default=Path("tefviz/assets/heldout_austen.json"))
    h.add_argument("--cache", type=Path, default=Path("data/debs"))
    h.set_defaults(func=_cmd_data_heldout)

    train = sub.add_parser("train", help="train models").add_subparsers(
        dest="train_command", required=True)
    t = train.add_parser("lm", help="train a GPT-2 or Llama LM from scratch")
    t.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    t.add_argument("--run-dir", type=Path, default=Path("runs/lm"))
    t.add_argument("--arch", choices=["gpt2", "llama"], default=None,
                   help="architecture (default: the preset's; gpt2 without a preset)")
    t.add_argument("--preset", choices=["small", "tiny", "llama-small", "llama-tiny"], default=None,
                   help="default: small (gpt2) or llama-small (--arch llama)")
    t.add_argument("--export", type=Path, default=None, help="export a checkpoint here when done")
    for name, typ in (("n_layer", int), ("n_embd", int), ("n_head", int), ("block_size", int),
                      ("vocab_size", int), ("batch_size", int), ("lr", float), ("dropout", float),
                      ("max_steps", int),
                      ("max_minutes", float), ("eval_every", int), ("seed", int), ("device", str),
                      ("dtype", str), ("n_kv_head", int), ("intermediate_size", int), ("rope_theta", float),
                      ("save_every", int), ("eval_windows", int), ("warmup_steps", int)):
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    t.add_argument("--finish-by", dest="finish_by", type=float, default=None,
                   help="unix time by which training must end (the time budget shrinks to fit)")
    t.set_defaults(func=_cmd_train_lm)

    tt = train.add_parser("tef", help="train TEF heads for a trained LM (paper or causal variant)")
    tt.add_argument("--variant", choices=["paper", "causal"], required=True)
    tt.add_argument("--base", default="checkpoints/tefviz-lm", help="LM checkpoint dir or hub name")
    tt.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    tt.add_argument("--run-dir", type=Path, default=None, help="default: runs/tef-<variant>")
    tt.add_argument("--export", type=Path, default=None, help="export a checkpoint here when done")
    tt.add_argument("--no-sink", action="store_true", help="causal: do not always keep the first token")
    for name, typ in (("steps", int), ("batch_size", int), ("block_size", int), ("lr", float),
                      ("lr_heads", float), ("t", float), ("tau", float), ("recent", int),
                      ("gate_l1", float), ("seed", int), ("max_minutes", float)):
        tt.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    tt.set_defaults(func=_cmd_train_tef)

    ti = train.add_parser("images", help="train a Fashion-MNIST classifier behind one image tokenizer")
    ti.add_argument("--tokenizer", default="svd_tef", help="patch, svd_tef, fft, svd_exact")
    ti.add_argument("--tnt", action="store_true", help="train TNT importance heads on a frozen ViT (--base)")
    ti.add_argument("--base", type=Path, default=None, help="--tnt: run directory of the trained ViT")
    ti.add_argument("--run-dir", type=Path, default=None, help="default: runs/images-<tokenizer or tnt>")
    ti.add_argument("--init", type=Path, default=None, help="start from this run directory's weights")
    ti.add_argument("--export", type=Path, default=None, help="export a checkpoint here when done")
    ti.add_argument("--command", default=None, help="training command(s) for the card (default: this one)")
    for name, typ in (("epochs", float), ("batch_size", int), ("lr", float), ("gate_l1", float), ("dim", int),
                      ("depth", int), ("heads", int), ("patch", int), ("train_images", int),
                      ("tnt_layer", int), ("tnt_noise", float), ("max_minutes", float), ("seed", int),
                      ("train_t_min", float), ("warmup_steps", int)):
        ti.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    ti.set_defaults(func=_cmd_train_images)

    te = train.add_parser("embeddings", help="fine-tune a compressed embedding (the LM frozen)")
    te.add_argument("--method", required=True, help="tensor_train, low_rank or lora_shared")
    te.add_argument("--knob", action="append", default=[], help="compressor setting, name=integer (repeat)")
    te.add_argument("--base", default="checkpoints/tefviz-lm", help="LM checkpoint dir or hub name")
    te.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    te.add_argument("--run-dir", type=Path, default=None, help="default: runs/embeddings-<method>")
    te.add_argument("--out", type=Path, default=Path("artifacts/finetune_embeddings.json"))
    for name, typ in (("steps", int), ("batch_size", int), ("block_size", int), ("lr", float),
                      ("heldout_windows", int), ("max_minutes", float), ("seed", int)):
        te.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    te.set_defaults(func=_cmd_train_embeddings)

    ex = sub.add_parser("export", help="export checkpoints").add_subparsers(
        dest="export_command", required=True)
    ei = ex.add_parser("images", help="write an image classifier checkpoint with its card")
    ei.add_argument("--run-dir", type=Path, required=True)
    ei.add_argument("--out", type=Path, required=True)
    ei.add_argument("--command", default=None)
    ei.set_defaults(func=_cmd_export_images)

    e = ex.add_parser("lm", help="write an fp16 safetensors checkpoint with its card")
    e.add_argument("--run-dir", type=Path, default=Path("runs/lm"))
    e.add_argument("--out", type=Path, default=Path("checkpoints/tefviz-lm"))
    e.add_argument("--preset", default=None, help="for the card (default: the run's, else small)")
    e.add_argument("--command", default=None,
                   help="training command for the card (default: the commands the run recorded)")
    e.set_defaults(func=_cmd_export_lm)

    et = ex.add_parser("tef", help="write a TEF checkpoint (tef.json, tef.safetensors, card)")
    et.add_argument("--run-dir", type=Path, required=True)
    et.add_argument("--out", type=Path, required=True)
    et.add_argument("--command", default=None)
    et.set_defaults(func=_cmd_export_tef)

    ev = sub.add_parser("eval", help="evaluate models").add_subparsers(
        dest="eval_command", required=True)
    el = ev.add_parser("lm", help="perplexity and bits per byte of a checkpoint or hub model")
    el.add_argument("model", help="checkpoint directory or Hugging Face name")
    el.add_argument("--corpus", type=Path, default=None, help="corpus dir (default: shipped held-out)")
    el.set_defaults(func=_cmd_eval_lm)

    from tefviz.data.heldout import SAMPLE_FILES

    etx = ev.add_parser("text", help="Table 1 analogue: perplexity and tokens kept vs t, every scorer, with "
                                     "per-window paired comparisons against the best baseline")
    etx.add_argument("--lm", default="checkpoints/tefviz-lm", help="the base LM")
    etx.add_argument("--tef", type=Path, action="append", default=[], help="TEF checkpoint dir (repeat)")
    etx.add_argument("--sample", dest="samples", action="append", default=[], choices=[*SAMPLE_FILES, "all"],
                     help="a shipped held-out sample (repeat; 'all' for every domain; default: austen "
                          "unless --text-file is given)")
    etx.add_argument("--text-file", dest="text_files", type=Path, action="append", default=[],
                     help="any UTF-8 text file to evaluate (repeat)")
    etx.add_argument("--windows", type=int, default=None, help="at most this many windows")
    etx.add_argument("--block", type=int, default=512)
    etx.add_argument("--out", type=Path, default=Path("artifacts/eval_text.json"),
                     help="JSON: one text's table, or {lm, texts: [table, ...]} for several")
    etx.add_argument("--write-cards", action="store_true", help="store the table in each TEF card")
    etx.set_defaults(func=_cmd_eval_text)

    eim = ev.add_parser("images",
                        help="Table 2 analogue: accuracy, macro-F1, tokens per setting, every tokenizer")
    eim.add_argument("--checkpoint", type=Path, action="append", default=None,
                     help="image checkpoint dir (repeat; default: every one in checkpoints/)")
    eim.add_argument("--limit", type=int, default=None, help="only the first N subset images")
    eim.add_argument("--out", type=Path, default=Path("artifacts/eval_images.json"))
    eim.add_argument("--write-cards", action="store_true", help="store the table in each card")
    eim.set_defaults(func=_cmd_eval_images)

    eap = ev.add_parser("approx", help="each attention approximation's error on the LM's real q, k, v")
    eap.add_argument("--lm", default="checkpoints/tefviz-lm")
    eap.add_argument("--tokens", type=int, default=256)
    eap.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256], help="m, k or N")
    eap.add_argument("--seeds", type=int, default=3)
    eap.add_argument("--out", type=Path, default=Path("artifacts/eval_approx.json"))
    eap.set_defaults(func=_cmd_eval_approx)

    bench = sub.add_parser("bench", help="benchmarks (print and save JSON)").add_subparsers(
        dest="bench_command", required=True)
    bl = bench.add_parser("lm", help="checkpoint load time; forward pass fp32 vs bf16")
    bl.add_argument("model", nargs="?", default="tefviz-lm")
    bl.add_argument("--tokens", type=int, default=512)
    bl.add_argument("--repeats", type=int, default=5)
    bl.add_argument("--out", type=Path, default=Path("artifacts/bench_lm.json"))
    bl.set_defaults(func=_cmd_bench_lm)

    bt = bench.add_parser("text", help="Text page costs: scoring pass vs filtered pass per scorer")
    bt.add_argument("model", nargs="?", default="checkpoints/tefviz-lm")
    bt.add_argument("--tef", type=Path, action="append", default=[], help="TEF checkpoint dir (repeat)")
    bt.add_argument("--tokens", type=int, default=512)
    bt.add_argument("--repeats", type=int, default=5)
    bt.add_argument("--out", type=Path, default=Path("artifacts/bench_text.json"))
    bt.set_defaults(func=_cmd_bench_text)

    bg = bench.add_parser("generate", help="evicted-KV-cache decoding vs dense: speed, cache bytes, KL")
    bg.add_argument("model", nargs="?", default="checkpoints/tefviz-llama")
    bg.add_argument("--tef", type=Path, default=None, help="causal TEF checkpoint (adds tef_causal)")
    bg.add_argument("--tokens", type=int, default=2048, help="prompt + generated tokens")
    bg.add_argument("--new-tokens", type=int, default=128)
    bg.add_argument("--budget", type=int, default=None, help="cache entries per layer (default: prompt / 2)")
    bg.add_argument("--policies", nargs="*", default=list(GENERATE_POLICIES))
    bg.add_argument("--out", type=Path, default=Path("artifacts/bench_generate.json"))
    bg.set_defaults(func=_cmd_bench_generate)

    ba = bench.add_parser("attention", help="dense vs mask SDPA vs compiled flex vs block gather, by length")
    ba.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    ba.add_argument("--pattern", default="sliding")
    ba.add_argument("--window", type=int, default=256,
                    help="causal sliding window: each token sees the WINDOW tokens before it and itself")
    ba.add_argument("--param", action="append", default=[], help="other pattern parameters, name=value")
    ba.add_argument("--impl", action="append", default=None,
                    help="dense_causal, mask_sdpa, flex, block_gather (repeat; default all)")
    ba.add_argument("--heads", type=int, default=12)
    ba.add_argument("--head-dim", type=int, default=64)
    ba.add_argument("--repeats", type=int, default=3)
    ba.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ba.add_argument("--out", type=Path, default=Path("artifacts/bench_attention.json"))
    ba.set_defaults(func=_cmd_bench_attention)

    bx = bench.add_parser("approx", help="exact attention vs Performer, Linformer, infinity-former by length")
    bx.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192, 16384, 32768])
    bx.add_argument("--method", action="append", default=None,
                    help="exact, exact_sdpa, performer, linformer, infinity_former (repeat; default all)")
    bx.add_argument("--heads", type=int, default=1)
    bx.add_argument("--head-dim", type=int, default=64)
    bx.add_argument("--repeats", type=int, default=3)
    bx.add_argument("--causal", action="store_true", help="causal exact and Performer only")
    bx.add_argument("--out", type=Path, default=Path("artifacts/bench_approx.json"))
    bx.set_defaults(func=_cmd_bench_approx)

    bi = bench.add_parser("images",
                          help="Images page costs: re-render per setting, subset evaluation, throughput")
    bi.add_argument("--checkpoint", type=Path, action="append", default=None,
                    help="image checkpoint dir (repeat; default: every one in checkpoints/)")
    bi.add_argument("--repeats", type=int, default=5)
    bi.add_argument("--out", type=Path, default=Path("artifacts/bench_images.json"))
    bi.set_defaults(func=_cmd_bench_images)

    bs = bench.add_parser("serve", help="load test: N browser sessions move the same sliders at once")
    bs.add_argument("--text-sessions", type=int, default=24, help="sessions on the Text page")
    bs.add_argument("--images-sessions", type=int, default=6, help="sessions on the Images page")
    bs.add_argument("--moves", type=int, default=5, help="slider moves per session, made in rounds")
    bs.add_argument("--move-timeout", type=float, default=120.0, help="seconds before a run counts as failed")
    bs.add_argument("--max-seconds", type=float, default=600.0,
                    help="stop after this many seconds in all and report what completed")
    bs.add_argument("--checkpoints", type=Path, default=None,
                    help="checkpoints dir for the server it starts (default: the repository's checkpoints/)")
    bs.add_argument("--url", default=None,
                    help="target an app already running on this machine (127.0.0.1, localhost or ::1 only)")
    bs.add_argument("--out", type=Path, default=Path("artifacts/bench_serve.json"))
    bs.set_defaults(func=_cmd_bench_serve)

    check = sub.add_parser("check", help="end-to-end checks").add_subparsers(dest="check_command",
                                                                              required=True)
    cd = check.add_parser("device", help="every page's core pipeline and every benchmark on this device")
    cd.add_argument("--only", nargs="*", default=None, help="checks whose page or name contains these")
    cd.add_argument("--budget-s", type=float, default=480, help="start no check after this many seconds")
    cd.add_argument("--attention-lengths", nargs="*", type=int, default=None,
                    help="bench attention lengths (default: 4096 16384 65536 on a GPU, 1024 4096 on a CPU)")
    cd.add_argument("--approx-lengths", nargs="*", type=int, default=None, help="bench approx lengths")
    cd.add_argument("--dtype", default=None, help="bench attention dtype (default: the device policy's)")
    cd.add_argument("--out", type=Path, default=Path("artifacts/check_device.json"))
    cd.set_defaults(func=_cmd_check_device)
    i = sub.add_parser("info", help="device policy and the checkpoints present")
    i.add_argument("--checkpoints", type=Path, default=None)
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    try:
        args.func(args)
    except TefvizError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.detail:
            print(f"detail: {e.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (training state is saved periodically; rerun to resume)", file=sys.stderr)
        return 130
    return 0
