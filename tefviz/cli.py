"""Command line: `python -m tefviz {data,train,export,eval,bench,check,info} ...`.

One entry point. Each group's commands live in `tefviz/commands/<group>.py` (their flags and
what they run); the `train` commands' flags are their config dataclasses' fields
(`tefviz/commands/fields.py`). A command's flags are added only when that command is parsed, so
`--help` and every command start without importing what the others need.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tefviz.errors import InputError, TefvizError

GROUPS = ("data", "train", "export", "eval", "bench", "check")


class Parser(argparse.ArgumentParser):
    """An argparse parser whose arguments are added when it first parses (`setup`), and whose
    errors are one-line `InputError`s (exit code 2 from `main`), not a usage dump."""

    def __init__(
        self, *args: Any, setup: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._setup = setup

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._setup is not None:
            setup, self._setup = self._setup, None
            setup(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see --help)")


def build_parser() -> Parser:
    """The whole command line; each command's own flags are added when it is parsed."""
    parser = Parser(prog="python -m tefviz", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        module = importlib.import_module(f"tefviz.commands.{group}")
        commands = sub.add_parser(group, help=module.HELP, description=module.HELP).add_subparsers(
            dest=f"{group}_command", required=True
        )
        for name, cmd in module.COMMANDS.items():
            p = commands.add_parser(name, help=cmd.help, description=cmd.help, setup=cmd.add_arguments)
            p.set_defaults(func=cmd.run)
    from tefviz.commands.check import INFO

    sub.add_parser("info", help=INFO.help, description=INFO.help, setup=INFO.add_arguments).set_defaults(
        func=INFO.run
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a `TefvizError` (bad input included) prints one line and returns 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
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
