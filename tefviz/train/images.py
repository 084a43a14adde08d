"""Train an image classifier on Fashion-MNIST: `python -m tefviz train images --tokenizer NAME ...`,
and TNT importance heads on a trained ViT: `python -m tefviz train images --tnt --base RUN_DIR`.

Data: the Debian package `dataset-fashion-mnist` (MIT); 55,000 training images, the last 5,000 of the
train split held out for validation; the test split is never seen (the shipped evaluation subset
comes from it). Inputs are 28x28 padded to 32x32; training adds a random horizontal flip and a
shift of up to 2 pixels.

Budgets during training, so one model serves every threshold:
  svd_tef    all tokens, loss = CE + gate_l1 * mean gate (filtering at inference only, as in the
             thesis); with --train-t-min, half the batches drop tokens at a random t in [t_min, 1]
             so the encoder learns to classify from the kept patches alone (used for the shipped
             model: inference-only filtering collapsed on this small model, see the card);
  fft        a random low-pass side per batch;
  svd_exact  a random number of leading components per batch;
  patch      all tokens; --tnt then trains only the importance heads with the backbone frozen.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from tefviz.data.fashion_mnist import LICENCE, PACKAGE, load_split
from tefviz.errors import InputError
from tefviz.images.checkpoint import save_image_checkpoint
from tefviz.images.evaluate import model_batch
from tefviz.images.model import ImageClassifier, Selection
from tefviz.images.tokenizers import TOKENIZERS, ImageConfig
from tefviz.train.loop import load_optimizer, load_weights, save_state, saved_progress, warmup_cosine

VALID_IMAGES = 5000


@dataclass
class ImageTrainConfig:
    # help and choices for `python -m tefviz train images` (one flag per field)
    tokenizer: str = field(
        default="svd_tef",
        metadata={"help": "image tokenizer the classifier reads", "choices": TOKENIZERS.names},
    )
    run_dir: Path = field(default=Path("runs/images"), metadata={"help": "run directory"})
    epochs: float = field(default=3.0, metadata={"help": "passes over the training images"})
    batch_size: int = field(default=128, metadata={"help": "images per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps"})
    gate_l1: float = field(default=0.005, metadata={"help": "weight of the gate penalty"})
    dim: int = field(default=128, metadata={"help": "ViT width"})
    depth: int = field(default=4, metadata={"help": "ViT blocks"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    patch: int = field(default=4, metadata={"help": "patch size in pixels"})
    train_images: int | None = field(
        default=None, metadata={"help": "train on this many images only (a prefix, for quick runs)"}
    )
    tnt: bool = field(default=False, metadata={"help": "train TNT importance heads on a frozen ViT (--base)"})
    base: Path | None = field(default=None, metadata={"help": "--tnt: run directory of the trained ViT"})
    tnt_layer: int = field(default=1, metadata={"help": "--tnt: the block with the importance heads"})
    tnt_noise: float = field(default=1.0, metadata={"help": "--tnt: training noise std (x token RMS)"})
    train_t_min: float | None = field(
        default=None, metadata={"help": "svd_tef: drop at a random t in [t_min, 1] on half the batches"}
    )
    init: Path | None = field(
        default=None, metadata={"help": "start from this run directory's weights (a second stage)"}
    )
    max_minutes: float | None = field(default=None, metadata={"help": "stop after this many minutes"})
    save_every: int = field(
        default=500, metadata={"help": "save the run's state (resumable) every this many steps"}
    )
    seed: int = field(default=0, metadata={"help": "random seed"})
    argv: list[str] | None = None
    extra: dict = field(default_factory=dict)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))  # the border is black, so a roll is a shift


def training_budget(cfg: ImageConfig, gen: torch.Generator, t_min: float | None = None) -> Selection:
    """The selection one training batch runs at: declared by the tokenizer (`training_budget`)."""
    return TOKENIZERS.get_class(cfg.tokenizer).training_budget(cfg, gen, t_min)


@torch.no_grad()
def accuracy(
    model: ImageClassifier, x: torch.Tensor, y: torch.Tensor, sel: Selection | None = None, batch: int = 500
) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + batch], sel).logits.argmax(-1) == y[i : i + batch]).sum())
        for i in range(0, len(x), batch)
    )
    return correct / len(x)


def _data(cfg: ImageTrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels = load_split("train")
    x, y = model_batch(images), torch.from_numpy(labels.astype(np.int64))
    xt, yt, xv, yv = x[:-VALID_IMAGES], y[:-VALID_IMAGES], x[-VALID_IMAGES:], y[-VALID_IMAGES:]
    if cfg.train_images:
        xt, yt = xt[: cfg.train_images], yt[: cfg.train_images]
    return xt, yt, xv, yv


# what must match for a run directory to be resumed: the model, and what trains in it
_RESUME_KEYS = ("tokenizer", "dim", "depth", "heads", "patch", "tnt", "tnt_layer", "base", "init")


def _run_config(cfg: ImageTrainConfig) -> dict:
    return {
        k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items() if k not in ("argv", "extra")
    }


def _resume(
    state: Path,
    cfg: ImageTrainConfig,
    model: ImageClassifier,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
) -> tuple[dict, torch.Tensor | None]:
    """(progress, the epoch's batch order) of the run saved in `state`, its weights, optimiser and
    random stream restored; a fresh progress and no order when there is nothing to resume."""
    saved = saved_progress(state)
    if saved is None:
        return {"step": 0, "elapsed_s": 0.0, "log": []}, None
    config, progress = saved
    now = _run_config(cfg)
    changed = {k: (config.get(k), now[k]) for k in _RESUME_KEYS if config.get(k) != now[k]}
    if changed:
        raise InputError(
            f"{cfg.run_dir} holds a different run {changed} (saved, requested); use a new --run-dir"
        )
    model.load_state_dict(load_weights(state, "model"))
    load_optimizer(state, opt)
    order = load_weights(state, "order")
    gen.set_state(order["generator"])
    print(f"resuming at step {progress['step']}", file=sys.stderr)
    return progress, order["perm"]


def train_images(cfg: ImageTrainConfig) -> Path:
    tokenizer = TOKENIZERS.get_class(cfg.tokenizer)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt, xv, yv = _data(cfg)
    if cfg.tnt:
        if cfg.base is None:
            raise InputError("--tnt needs --base, the run directory of a trained ViT (patch) model")
        base_cfg = json.loads((cfg.base / "config.json").read_text())
        bases = TOKENIZERS.names(where=lambda c: c.tnt_base)
        if base_cfg.get("tokenizer") not in bases:
            raise InputError(
                f"--tnt prunes a plain ViT: --base must be a {' or '.join(bases)} run, "
                f"not {base_cfg.get('tokenizer')}"
            )
        if not 0 <= cfg.tnt_layer < base_cfg.get("depth", 0) - 1:
            raise InputError(
                f"--tnt-layer must lie in [0, {base_cfg.get('depth', 0) - 2}] (a block before the last)"
            )
        model_cfg = ImageConfig.from_json({**base_cfg, "tnt_layers": [cfg.tnt_layer]})
        model = ImageClassifier(model_cfg)
        missing = model.load_state_dict(load_file(cfg.base / "model.safetensors"), strict=False).missing_keys
        assert all(k.startswith("tnt_heads.") for k in missing), missing
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("tnt_heads.")
        model.tnt_noise = cfg.tnt_noise
    else:
        model_cfg = ImageConfig(
            tokenizer=cfg.tokenizer,
            dim=cfg.dim,
            depth=cfg.depth,
            heads=cfg.heads,
            mlp=2 * cfg.dim,
            patch=cfg.patch,
        )
        model = ImageClassifier(model_cfg)
        if cfg.init is not None:
            model_cfg = ImageConfig.from_json(json.loads((cfg.init / "config.json").read_text()))
            model = ImageClassifier(model_cfg)
            model.load_state_dict(load_file(cfg.init / "model.safetensors"))
    if cfg.train_t_min is not None and not 0.0 < cfg.train_t_min <= 1.0:
        raise InputError(f"--train-t-min must lie in (0, 1], got {cfg.train_t_min}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0 if cfg.tnt else cfg.weight_decay)
    if len(xt) == 0:
        raise InputError("no training images")
    steps_per_epoch = max(1, len(xt) // cfg.batch_size)  # fewer images than a batch: one short batch
    total = max(1, int(cfg.epochs * steps_per_epoch))
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    state = cfg.run_dir / "state"
    progress, perm = _resume(state, cfg, model, opt, gen)

    def save() -> None:  # the random stream and the epoch's order too: a resumed run goes on exactly
        order = {"perm": perm, "generator": gen.get_state()}
        save_state(state, {"model": model.state_dict(), "order": order}, opt, _run_config(cfg), progress)

    bar = tqdm(
        total=total,
        initial=progress["step"],
        desc=f"train {'tnt' if cfg.tnt else cfg.tokenizer}",
        unit="step",
    )
    t_last = time.time()
    while progress["step"] < total and not (cfg.max_minutes and progress["elapsed_s"] > 60 * cfg.max_minutes):
        step = progress["step"]
        i = step % steps_per_epoch
        if i == 0 or perm is None:  # a new epoch, a new order
            perm = torch.randperm(len(xt), generator=gen)
        idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        model.train()
        if cfg.tnt:  # frozen backbone: keep BatchNorm statistics as trained
            model.tokenizer.eval()
        out = model(
            augment(xt[idx], gen), None if cfg.tnt else training_budget(model_cfg, gen, cfg.train_t_min)
        )
        ce = F.cross_entropy(out.logits, yt[idx])
        loss = ce
        if out.tokens.scores is not None and tokenizer.gate_penalty and not cfg.tnt:
            loss = ce + cfg.gate_l1 * out.tokens.scores.mean()
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(
                cfg.lr, step, cfg.warmup_steps, total, progress["elapsed_s"], cfg.max_minutes
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        now = time.time()
        progress["elapsed_s"] += now - t_last
        t_last = now
        progress["step"] = step = step + 1
        bar.update(1)
        bar.set_postfix(ce=f"{ce.item():.3f}")
        if step % 100 == 0:
            progress["log"].append(
                {"step": step, "train_ce": round(ce.item(), 4), "elapsed_s": round(progress["elapsed_s"], 1)}
            )
        if step % cfg.save_every == 0:
            save()
    bar.close()
    save()
    step, log = progress["step"], progress["log"]
    valid_acc = accuracy(model, xv, yv)
    log.append(
        {"step": step, "valid_accuracy": round(valid_acc, 4), "elapsed_s": round(progress["elapsed_s"], 1)}
    )
    print(
        f"validation accuracy (all tokens): {valid_acc:.4f} after {step} steps, "
        f"{progress['elapsed_s'] / 60:.1f} min"
    )
    model.tnt_noise = 0.0
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, cfg.run_dir / "model.safetensors")
    (cfg.run_dir / "config.json").write_text(json.dumps(model_cfg.to_json(), indent=1))
    run = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "steps": step,
        "images_seen": step * cfg.batch_size,
        "valid_accuracy": valid_acc,
        "minutes": round(progress["elapsed_s"] / 60, 1),
        "log": log,
    }
    (cfg.run_dir / "run.json").write_text(json.dumps(run, indent=1))
    return cfg.run_dir


def run_stages(run_dir: Path) -> list[dict]:
    """The runs that made a model, earlier stages (--base, --init) first."""
    run = json.loads((run_dir / "run.json").read_text())
    earlier = run["config"].get("init") or run["config"].get("base")
    before = run_stages(Path(earlier)) if earlier and (Path(earlier) / "run.json").is_file() else []
    return [*before, run]


def run_commands(run_dir: Path) -> list[str]:
    return [c for r in run_stages(run_dir) for c in (r["config"].get("argv") or [])]


def export_images(run_dir: Path, out: Path, command: str | None = None) -> dict:
    """Write the checkpoint (fp16 weights, config, preprocessor config, card) from a run."""
    run = json.loads((run_dir / "run.json").read_text())
    stages = run_stages(run_dir)
    model_cfg = ImageConfig.from_json(json.loads((run_dir / "config.json").read_text()))
    model = ImageClassifier(model_cfg)
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    tok = TOKENIZERS[model_cfg.tokenizer]
    previous = {}
    if (out / "card.json").is_file():  # keep the evaluation table written by `eval images`
        previous = {k: v for k, v in json.loads((out / "card.json").read_text()).items() if k == "evaluation"}
    card = {
        "name": out.name,
        "summary": f"{tok.label} tokenizer + ViT encoder ({model_cfg.depth} blocks, width {model_cfg.dim}) "
        f"for Fashion-MNIST. {tok.description}",
        "architecture": {
            "tokenizer": model_cfg.tokenizer,
            "tokens": model_cfg.max_tokens + 1,
            "depth": model_cfg.depth,
            "width": model_cfg.dim,
            "heads": model_cfg.heads,
            "tnt_layers": list(model_cfg.tnt_layers),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "training_data": {
            "sources": [
                {
                    "name": "Fashion-MNIST",
                    "package": PACKAGE,
                    "licence": LICENCE,
                    "description": "train split minus its last 5,000 images (validation)",
                    "images": run["config"].get("train_images") or 55000,
                }
            ]
        },
        "training": {
            "command": command or " && ".join(run_commands(run_dir)),
            # totals over every stage; the log is the last stage's
            "steps": sum(r["steps"] for r in stages),
            "images_seen": sum(r["images_seen"] for r in stages),
            "minutes": round(sum(r["minutes"] for r in stages), 1),
            "stages": [
                {
                    "command": " ".join(r["config"].get("argv") or []),
                    "steps": r["steps"],
                    "minutes": r["minutes"],
                    "valid_accuracy": r["valid_accuracy"],
                }
                for r in stages
            ],
            "device": run.get("device", "cpu"),
            "log": run["log"],
        },
        "metrics": {"valid_accuracy": run["valid_accuracy"]},
        **previous,
    }
    save_image_checkpoint(model, out, card)
    return card
