"""The commands of `python -m tefviz`, one module per group (data, train, export, eval, bench,
check). Each module has `HELP` and `COMMANDS`: name -> `Command(help, add_arguments, run)`.
`add_arguments` runs only when its command is parsed, so every import (torch, the registries, the
config dataclasses) happens inside these functions, never at module level.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from tefviz.errors import InputError


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def add_image_checkpoints(parser: argparse.ArgumentParser) -> None:
    """`--checkpoint DIR` (repeat), as `eval images` and `bench images` take it."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=None,
        help="image checkpoint dir (repeat; default: every one in checkpoints/)",
    )


def image_checkpoints(given: list[Path] | None) -> list[Path]:
    """The image checkpoints named on the command line, else every one in checkpoints/."""
    from tefviz.checkpoints import checkpoints_root

    dirs = given or sorted(p.parent for p in checkpoints_root().glob("*/preprocessor_config.json"))
    if not dirs:
        raise InputError("no image checkpoints found; train one with `python -m tefviz train images`")
    return dirs
