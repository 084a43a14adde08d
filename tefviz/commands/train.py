"""`python -m tefviz train {lm,tef,images,embeddings}`: each command's flags are its config
dataclass's fields (`tefviz.commands.fields`), so a new field is a new flag by itself; the few
flags of its own (`--preset`, `--export`, `--out`, `--command`) are added here."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tefviz.commands import Command
from tefviz.commands.fields import add_config_arguments, config_values
from tefviz.errors import InputError

HELP = "train models"

EXPORT_HELP = "export a checkpoint here when done"


def _add_lm(p: argparse.ArgumentParser) -> None:
    from tefviz.train.lm import PRESETS, TrainConfig

    preset_fields = {k for values in PRESETS.values() for k in values}
    add_config_arguments(p, TrainConfig, default_note=dict.fromkeys(preset_fields, "the preset's"))
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="default: small (gpt2) or llama-small (--arch llama)",
    )
    p.add_argument("--export", type=Path, default=None, help=EXPORT_HELP)


def _run_lm(args: argparse.Namespace) -> None:
    from tefviz.train.lm import PRESETS, TrainConfig, train_lm

    given = config_values(TrainConfig, args)
    preset = args.preset or ("llama-small" if given.get("arch") == "llama" else "small")
    values = {**PRESETS[preset], **given}
    preset_arch = PRESETS[preset].get("arch", "gpt2")
    if given.get("arch", preset_arch) != preset_arch:
        raise InputError(f"preset {preset!r} is a {preset_arch} model, not {given['arch']}")
    if values.get("arch") == "llama":
        values["extra"] = {"preset": preset}  # for the card (GPT-2 runs keep their config as it was)
    cfg = TrainConfig(argv=args.argv, **values)
    train_lm(cfg)
    if args.export:
        from tefviz.train.export import export_lm

        export_lm(cfg.run_dir, args.export, preset=preset)


def _add_tef(p: argparse.ArgumentParser) -> None:
    from tefviz.train.tef import TEFTrainConfig

    notes = {"run_dir": "runs/tef-<variant>", **dict.fromkeys(("lr", "lr_heads", "t"), "the variant's")}
    add_config_arguments(
        p,
        TEFTrainConfig,
        defaults={"base": "checkpoints/tefviz-lm", "corpus_dir": Path("data/corpus"), "run_dir": None},
        default_note=notes,
    )
    p.add_argument("--export", type=Path, default=None, help=EXPORT_HELP)


def _run_tef(args: argparse.Namespace) -> None:
    from tefviz.train.tef import TEFTrainConfig, export_tef, train_tef

    values = config_values(TEFTrainConfig, args)
    values.setdefault("run_dir", Path(f"runs/tef-{values['variant']}"))
    cfg = TEFTrainConfig(argv=args.argv, **values)
    train_tef(cfg)
    if args.export:
        export_tef(cfg.run_dir, args.export)


def _add_images(p: argparse.ArgumentParser) -> None:
    from tefviz.train.images import ImageTrainConfig

    add_config_arguments(
        p,
        ImageTrainConfig,
        defaults={"run_dir": None},
        default_note={"run_dir": "runs/images-<tokenizer or tnt>"},
    )
    p.add_argument("--export", type=Path, default=None, help=EXPORT_HELP)
    p.add_argument("--command", default=None, help="training command(s) for the card (default: this one)")


def _run_images(args: argparse.Namespace) -> None:
    from tefviz.train.images import ImageTrainConfig, export_images, train_images
    from tefviz.train.lm import command_line

    cfg = ImageTrainConfig(argv=[command_line(args.argv)], **config_values(ImageTrainConfig, args))
    if cfg.tnt:
        cfg = replace(cfg, tokenizer="patch")
    if args.run_dir is None:
        cfg = replace(cfg, run_dir=Path(f"runs/images-{'tnt' if cfg.tnt else cfg.tokenizer}"))
    train_images(cfg)
    if args.export:
        export_images(cfg.run_dir, args.export, command=args.command)


def _add_embeddings(p: argparse.ArgumentParser) -> None:
    from tefviz.embeddings.finetune import FinetuneConfig

    add_config_arguments(
        p, FinetuneConfig, defaults={"run_dir": None}, default_note={"run_dir": "runs/embeddings-<method>"}
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/finetune_embeddings.json"),
        help="the result as JSON (default: %(default)s)",
    )


def _run_embeddings(args: argparse.Namespace) -> None:
    import json

    from tefviz.embeddings.finetune import FinetuneConfig, finetune_embedding
    from tefviz.train.lm import command_line

    values = config_values(FinetuneConfig, args)
    values.setdefault("run_dir", Path(f"runs/embeddings-{values['method']}"))
    result = finetune_embedding(FinetuneConfig(command=command_line(args.argv), **values))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print(f"saved {args.out}")


COMMANDS = {
    "lm": Command("train a GPT-2 or Llama LM from scratch", _add_lm, _run_lm),
    "tef": Command("train TEF heads for a trained LM (paper or causal variant)", _add_tef, _run_tef),
    "images": Command(
        "train a Fashion-MNIST classifier behind one image tokenizer", _add_images, _run_images
    ),
    "embeddings": Command(
        "fine-tune a compressed embedding (the LM frozen)", _add_embeddings, _run_embeddings
    ),
}
