"""The command line: every `python -m tefviz ...` the README, scripts/*.sh and the shipped
checkpoint cards show still parses (parse only, nothing runs); the `train` commands parse
straight into their config dataclasses; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tefviz.cli import build_parser, main
from tefviz.commands.fields import add_config_arguments, config_values

from .conftest import REPO

# values for the shell variables the scripts pass (a new variable makes the test say so)
SCRIPT_VARS = {
    "PRESET": "llama-small",
    "t": "fft",
    "CORPUS": "data/corpus-broad",
    "RUN": "runs/llama",
    "MAX_MINUTES": "5",
    "FINISH_BY": "0",
    "EXTRA:-": "",
    "@": "",
}
INVOCATION = re.compile(r"-m tefviz\s+(.*)")


def _cut(rest: str) -> str:
    """The arguments of one invocation: up to a comment, `&&`, `|`, `;` or the end."""
    return " ".join(re.split(r"\s#|&&|\||;", rest)[0].split())


def _readme() -> list[str]:
    text = (REPO / "README.md").read_text()
    out = []
    for i, chunk in enumerate(re.split(r"^```.*$", text, flags=re.M)):
        if i % 2:  # a fenced block: one command a line
            out += [_cut(m.group(1)) for m in INVOCATION.finditer(chunk)]
        else:  # prose: inline code, which may wrap onto the next line
            spans = (" ".join(s.split()) for s in re.findall(r"`([^`]+)`", chunk))
            out += [_cut(m.group(1)) for s in spans if (m := INVOCATION.search(s))]
    return out


def _scripts() -> list[str]:
    out = []
    for path in sorted((REPO / "scripts").glob("*.sh")):
        text = path.read_text().replace("\\\n", " ")
        text = text.replace("$T ", "$PY -m tefviz train images ")
        for line in text.splitlines():
            assignment = re.match(r"\s*\w+=", line)  # T="$PY -m tefviz train images": used below
            if line.lstrip().startswith("#") or assignment or not (m := INVOCATION.search(line)):
                continue
            rest = re.sub(r'"?\$\{?([\w@]+(?::-)?)\}?"?', lambda v: SCRIPT_VARS[v.group(1)], _cut(m.group(1)))
            out.append(rest)
    return out


def _cards() -> list[str]:
    def commands(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "command" and isinstance(v, str):
                    yield from v.split("&&")
                else:
                    yield from commands(v)
        elif isinstance(node, list):
            for v in node:
                yield from commands(v)

    return [
        _cut(m.group(1))
        for card in sorted((REPO / "checkpoints").glob("*/card.json"))
        for c in commands(json.loads(card.read_text()))
        if (m := INVOCATION.search(c))
    ]


DOCUMENTED = sorted(set(_readme()) | set(_scripts()) | set(_cards()))


def test_the_documented_commands_are_found():
    assert len(DOCUMENTED) > 40
    for group in (
        "data build",
        "train lm",
        "train tef",
        "train images",
        "train embeddings",
        "export lm",
        "eval text",
        "eval images",
        "bench approx",
        "bench attention",
        "check device",
        "info",
    ):
        assert any(c.startswith(group) for c in DOCUMENTED), group


@pytest.mark.parametrize("command", DOCUMENTED)
def test_documented_command_parses(command):
    args = build_parser().parse_args(shlex.split(command))
    assert callable(args.func)


def test_train_commands_parse_into_their_configs():
    from tefviz.embeddings.finetune import FinetuneConfig
    from tefviz.train.images import ImageTrainConfig
    from tefviz.train.lm import TrainConfig
    from tefviz.train.tef import TEFTrainConfig

    parse = build_parser().parse_args
    lm = parse(["train", "lm", "--preset", "tiny", "--n-embd", "96", "--corpus", "c", "--finish-by", "5"])
    assert config_values(TrainConfig, lm) == {"n_embd": 96, "corpus_dir": Path("c"), "finish_by": 5.0}
    tef = parse(
        ["train", "tef", "--variant", "causal", "--no-sink", "--t", "0.4", "--features", "age", "key_norm"]
    )
    assert config_values(TEFTrainConfig, tef) == {
        "variant": "causal",
        "sink": False,
        "t": 0.4,
        "base": "checkpoints/tefviz-lm",
        "corpus_dir": Path("data/corpus"),
        "features": ["age", "key_norm"],
    }
    images = parse(["train", "images", "--tnt", "--base", "runs/b", "--epochs", "0.5"])
    assert config_values(ImageTrainConfig, images) == {"tnt": True, "base": Path("runs/b"), "epochs": 0.5}
    emb = parse(["train", "embeddings", "--method", "low_rank", "--knob", "rank=4", "--knob", "rank=8"])
    assert config_values(FinetuneConfig, emb) == {"method": "low_rank", "knobs": {"rank": 8}}


def test_choices_come_from_the_registries(capsys):
    from tefviz.attention.approx import APPROXIMATIONS
    from tefviz.attention.patterns import PATTERNS
    from tefviz.embeddings.compressors import COMPRESSORS
    from tefviz.images.tokenizers import TOKENIZERS

    for command, flag, registry in (
        (("train", "embeddings"), "--method", COMPRESSORS),
        (("train", "images"), "--tokenizer", TOKENIZERS),
        (("bench", "approx"), "--method", APPROXIMATIONS),
        (("bench", "attention"), "--pattern", PATTERNS),
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--help"])
        usage = " ".join(capsys.readouterr().out.split())
        listed = re.search(re.escape(flag) + r" \{([^}]*)\}", usage).group(1).split(",")
        assert set(registry.names()) <= set(listed), (command, flag)


def test_bad_input_is_one_line_and_code_2(capsys):
    assert main(["train", "images", "--tokenizer", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'nope'" in err
    assert main(["train", "embeddings", "--method", "low_rank", "--knob", "rank4"]) == 2
    assert "takes name=integer" in capsys.readouterr().err
    assert main(["bench"]) == 2
    assert "required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "train" in capsys.readouterr().out


def test_a_new_field_is_a_new_flag():
    """What the derivation reads: the annotation, the metadata's help, flag and choices."""

    @dataclass
    class Cfg:
        name: str = field(metadata={"help": "a name", "choices": lambda: ["a", "b"]})
        mode: Literal["x", "y"] = "x"
        corpus_dir: Path = field(default=Path("d"), metadata={"help": "dir", "flag": "--corpus"})
        sizes: list[int] = field(default_factory=list)
        limit: float | None = None
        sink: bool = True
        knobs: dict[str, int] = field(default_factory=dict, metadata={"flag": "--knob"})
        extra: dict = field(default_factory=dict)

    from tefviz.cli import Parser

    p = Parser(prog="t")
    add_config_arguments(p, Cfg)
    args = p.parse_args(["--name", "b", "--mode", "y", "--sizes", "1", "2", "--no-sink", "--knob", "k=3"])
    assert config_values(Cfg, args) == {
        "name": "b",
        "mode": "y",
        "sizes": [1, 2],
        "sink": False,
        "knobs": {"k": 3},
    }
    assert config_values(Cfg, p.parse_args(["--name", "a", "--corpus", "e", "--limit", "2"])) == {
        "name": "a",
        "corpus_dir": Path("e"),
        "limit": 2.0,
    }
    help_text = p.format_help()
    assert "a name" in help_text and "(default: d)" in help_text and "--extra" not in help_text
