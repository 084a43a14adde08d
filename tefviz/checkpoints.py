"""The shipped checkpoints: where they live, what a valid one holds, and their cards.

A checkpoint is a directory with `config.json`, safetensors weights, tokenizer
files and a card (`card.json`, or `README.md`). The UI only reads checkpoints
from the checkpoints root (never arbitrary paths), resolved here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from tefviz.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
# an image model's "tokenizer" is its preprocessing (how a picture becomes the input tensor)
IMAGE_TOKENIZER_FILES = ("preprocessor_config.json",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def checkpoints_root() -> Path:
    """`checkpoints/` in the repository, or TEFVIZ_CHECKPOINTS."""
    return Path(os.environ.get("TEFVIZ_CHECKPOINTS", REPO_ROOT / "checkpoints"))


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    path: Path
    config: dict | None
    card: dict | None
    parameters: int | None
    weight_bytes: int
    error: str | None  # why it is unusable, or None
    tef: dict | None = None  # tef.json of TEF heads (variant, base LM), read with the rest
    fingerprint: str = ""  # changes whenever a file of the directory is rewritten

    @property
    def usable(self) -> bool:
        return self.error is None

    @property
    def kind(self) -> str:
        """ "tef" for TEF heads (tef.json beside them), "image" for image classifiers, else "lm"."""
        if self.tef is not None:
            return "tef"
        return "image" if (self.config or {}).get("model_type") == "tefviz-image" else "lm"


def _weight_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.safetensors"))


def validate_checkpoint(path: Path) -> None:
    """Raise CheckpointError saying exactly what is wrong with a checkpoint directory."""
    if not path.exists():
        raise CheckpointError(f"checkpoint directory {path.name!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path.name!r} is not a directory")
    cfg = path / "config.json"
    if not cfg.is_file():
        raise CheckpointError(f"checkpoint {path.name!r} has no config.json")
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path.name!r}: config.json is not valid JSON", str(e)) from e
    if not isinstance(config, dict) or "model_type" not in config:
        raise CheckpointError(f"checkpoint {path.name!r}: config.json has no model_type")
    pickles = [*path.glob("*.bin"), *path.glob("*.pt"), *path.glob("*.pkl")]
    if pickles and not _weight_files(path):
        raise CheckpointError(
            f"checkpoint {path.name!r} has only pickle weights; tefviz loads safetensors only"
        )
    weights = _weight_files(path)
    if not weights:
        raise CheckpointError(f"checkpoint {path.name!r} has no .safetensors weights")
    for w in weights:
        try:
            with safe_open(w, framework="pt") as f:
                list(f.keys())
        except Exception as e:  # safetensors raises several types for corrupt headers
            raise CheckpointError(
                f"checkpoint {path.name!r}: weights file {w.name} is corrupt or truncated", repr(e)
            ) from e
    if config["model_type"] == "tefviz-image":
        if not all((path / f).is_file() for f in IMAGE_TOKENIZER_FILES):
            raise CheckpointError(f"image checkpoint {path.name!r} has no preprocessor_config.json")
    elif not any(all((path / f).is_file() for f in files) for files in TOKENIZER_FILE_SETS):
        raise CheckpointError(
            f"checkpoint {path.name!r} is missing its tokenizer (tokenizer.json, or vocab.json + merges.txt)"
        )
    for name in ("tokenizer.json", "vocab.json", "tokenizer_config.json", "preprocessor_config.json"):
        if (path / name).is_file():
            try:
                json.loads((path / name).read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise CheckpointError(f"checkpoint {path.name!r}: {name} is corrupt", str(e)) from e


def read_card(path: Path) -> dict | None:
    """The model card: card.json as a dict, or README.md as {'markdown': ...};
    {'error': ...} when the card cannot be read."""
    try:
        if (path / "card.json").is_file():
            card = json.loads((path / "card.json").read_text(encoding="utf-8"))
            return card if isinstance(card, dict) else {"error": "card.json is not a JSON object"}
        if (path / "README.md").is_file():
            return {"markdown": (path / "README.md").read_text(encoding="utf-8", errors="replace")}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"error": "card.json is not valid UTF-8 JSON"}
    return None


def checkpoint_version(path: Path) -> str:
    """Changes whenever the weights are rewritten: part of every cache key for this checkpoint."""
    stats = [w.stat() for w in _weight_files(path)]
    return "-".join(f"{s.st_mtime_ns}:{s.st_size}" for s in stats)


def _count_parameters(path: Path) -> int:
    total = 0
    for w in _weight_files(path):
        with safe_open(w, framework="pt") as f:
            names = f.keys()
            for k in names:
                n = 1
                for d in f.get_slice(k).get_shape():
                    n *= d
                total += n
    return total


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    """Everything the home page shows about a checkpoint, without loading its weights."""
    error = None
    try:
        validate_checkpoint(path)
    except CheckpointError as e:
        error = str(e)
    config = None
    if (path / "config.json").is_file():
        try:
            config = json.loads((path / "config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            config = None
    tef = None
    if (path / "tef.json").is_file():
        try:
            tef = json.loads((path / "tef.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            tef = {}  # still TEF heads, just broken ones: validation reports why
        tef = tef if isinstance(tef, dict) else {}
    return CheckpointInfo(
        name=path.name,
        path=path,
        config=config,
        card=read_card(path) if path.is_dir() else None,
        parameters=_count_parameters(path) if error is None else None,
        weight_bytes=sum(w.stat().st_size for w in _weight_files(path)) if path.is_dir() else 0,
        error=error,
        tef=tef,
    )


def directory_fingerprint(path: Path) -> str:
    """Name, size and modification time of every file directly in `path`: cheap (stat calls
    only) and different whenever a file is added, removed or rewritten."""
    try:
        entries = sorted((e.name, e.stat()) for e in os.scandir(path) if e.is_file())
    except OSError:
        return ""
    return "|".join(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in entries)


_INSPECTED: dict[Path, CheckpointInfo] = {}


def list_checkpoints(root: Path | None = None) -> list[CheckpointInfo]:
    """Every checkpoint directory under `root`, inspected; a directory whose files did not change
    since it was last inspected is not read again (validation parses every JSON file in it)."""
    root = root or checkpoints_root()
    if not root.is_dir():
        return []
    dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    found = []
    for p in dirs:
        fingerprint = directory_fingerprint(p)
        info = _INSPECTED.get(p)
        if info is None or not fingerprint or info.fingerprint != fingerprint:
            info = dataclasses.replace(inspect_checkpoint(p), fingerprint=fingerprint)
            _INSPECTED[p] = info
        found.append(info)
    return found


def resolve_checkpoint(name: str, root: Path | None = None) -> Path:
    """The directory of checkpoint `name` inside the checkpoints root, never outside it."""
    root = (root or checkpoints_root()).resolve()
    if not _NAME.match(name):
        raise CheckpointError(f"{name!r} is not a checkpoint name")
    path = (root / name).resolve()
    if path.parent != root:
        raise CheckpointError(f"{name!r} is not inside the checkpoints directory")
    return path
