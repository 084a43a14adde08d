"""`python -m tefviz export {images,lm,tef}`: a run directory -> a checkpoint with its card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tefviz.commands import Command

HELP = "export checkpoints"


def _add_run_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--command", default=None, help="training command for the card (default: the run's)")


def _run_images(args: argparse.Namespace) -> None:
    from tefviz.train.images import export_images

    card = export_images(args.run_dir, args.out, command=args.command)
    print(f"wrote {args.out} (validation accuracy {card['metrics']['valid_accuracy']:.4f})")


def _add_lm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, default=Path("runs/lm"))
    p.add_argument("--out", type=Path, default=Path("checkpoints/tefviz-lm"))
    p.add_argument("--preset", default=None, help="for the card (default: the run's, else small)")
    p.add_argument(
        "--command",
        default=None,
        help="training command for the card (default: the commands the run recorded)",
    )


def _run_lm(args: argparse.Namespace) -> None:
    from tefviz.train.export import export_lm

    card = export_lm(args.run_dir, args.out, command=args.command, preset=args.preset)
    print(json.dumps(card["metrics"], indent=1))


def _run_tef(args: argparse.Namespace) -> None:
    from tefviz.train.tef import export_tef

    card = export_tef(args.run_dir, args.out, command=args.command)
    print(f"wrote {args.out} ({card['variant']} TEF, {card['training']['steps']} steps)")


COMMANDS = {
    "images": Command("write an image classifier checkpoint with its card", _add_run_out, _run_images),
    "lm": Command("write an fp16 safetensors checkpoint with its card", _add_lm, _run_lm),
    "tef": Command("write a TEF checkpoint (tef.json, tef.safetensors, card)", _add_run_out, _run_tef),
}
