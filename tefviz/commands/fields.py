"""Command-line flags derived from a config dataclass, written once for every `train` command.

One flag per field: `--field-name` (or the field's `metadata["flag"]`), its type from the
annotation (`int`, `float`, `str`, `Path`, `X | None`, `Literal[...]`, `list[X]` as several
values, `dict[str, int]` as a repeated `name=integer`), a `bool` as `--name` (default False) or
`--no-name` (default True), its help from `field(metadata={"help": ...})` and its choices from
`metadata["choices"]` (a list, or a callable such as a registry's `names`, called when the parser
is built). A flag left out is left out of the namespace, so `config_values` returns only what the
command line gave and the dataclass (or a preset) supplies the rest. `argv`, `extra` and `command`
are recorded by the command, never set by a flag.

Not `transformers.HfArgumentParser`: it fills in every default (a preset could not tell a given
flag from a default), adds `--field_name` spellings and a flag for every field (`--extra`), and
builds its parser eagerly.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

RECORDED = ("argv", "extra", "command")
SCALARS = (int, float, str, Path)
Choices = Iterable[str] | Callable[[], Iterable[str]]


def name_int(text: str) -> tuple[str, int]:
    """`"rank=4"` -> `("rank", 4)`: the type of a repeated `name=integer` flag."""
    key, sep, value = text.partition("=")
    try:
        if not key or not sep:
            raise ValueError(text)
        return key, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes name=integer, got {text!r}") from None


def _kind(annotation: Any) -> tuple[Any, str]:
    """(value type, shape) of a field's annotation; shape is "one", "list" or "dict"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    rest = [a for a in args if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(rest) == 1:
        return _kind(rest[0])
    if origin is list and len(args) == 1 and args[0] in SCALARS:
        return args[0], "list"
    if origin is dict and args == (str, int):
        return int, "dict"
    if origin is Literal or annotation in (*SCALARS, bool):
        return annotation, "one"
    raise TypeError(f"no command-line flag for a field of type {annotation!r}")


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any, str]]:
    hints = typing.get_type_hints(cls)
    return [(f, *_kind(hints[f.name])) for f in dataclasses.fields(cls) if f.init and f.name not in RECORDED]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING


def _help(text: str, default: Any, note: str | None) -> str:
    shown = note if note is not None else default
    if shown is not dataclasses.MISSING and shown not in (None, [], {}) and not isinstance(shown, bool):
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return text.replace("%", "%%")


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Mapping[str, Any] | None = None,
    help: Mapping[str, str] | None = None,
    choices: Mapping[str, Choices] | None = None,
    flags: Mapping[str, str] | None = None,
    default_note: Mapping[str, str] | None = None,
) -> None:
    """Add one flag per field of the dataclass `cls` to `parser`.

    `defaults`: the command's own defaults for some fields (None: the command works it out, say
    so in `default_note`). `help`, `choices` and `flags` fill in what a field's metadata lacks
    (the metadata wins where both say).
    """
    defaults, default_note = defaults or {}, default_note or {}
    for f, typ, shape in _fields(cls):
        meta = {
            "help": (help or {}).get(f.name, ""),
            "choices": (choices or {}).get(f.name),
            "flag": (flags or {}).get(f.name),
            **f.metadata,
        }
        default = defaults.get(f.name, _default(f))
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": defaults.get(f.name, argparse.SUPPRESS),
            "help": _help(meta["help"], default, default_note.get(f.name)),
        }
        if typ is bool:
            flag = "--no-" + flag[2:] if default is True else flag
            kw["action"] = "store_false" if default is True else "store_true"
        else:
            kw.update(_value_kwargs(typ, shape, meta["choices"], flag))
            if "choices" in kw and "nargs" in kw:
                kw["help"] += f" (any of: {', '.join(map(str, kw['choices']))})"
        if default is dataclasses.MISSING:
            kw.update(required=True, default=None)
        parser.add_argument(flag, **kw)


def _value_kwargs(typ: Any, shape: str, options: Choices | None, flag: str) -> dict[str, Any]:
    """type, choices, nargs/action and metavar of a flag that takes a value."""
    if typing.get_origin(typ) is Literal:
        typ, options = str, typing.get_args(typ)
    kw: dict[str, Any] = {"type": typ}
    if options is not None:
        kw["choices"] = list(options() if callable(options) else options)
    else:
        kw["metavar"] = flag[2:].upper().replace("-", "_")
    if shape == "list":
        kw["nargs"] = "+"
        if options is not None:  # one name in the usage line, the choices once in the help
            kw["metavar"] = flag[2:].upper().replace("-", "_")
    elif shape == "dict":
        kw.update(action="append", type=name_int, metavar="NAME=INT")
    return kw


def config_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `cls` the command line set (given, or a command default that is not None)."""
    out: dict[str, Any] = {}
    for f, _, shape in _fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            out[f.name] = dict(value) if shape == "dict" else value
    return out
