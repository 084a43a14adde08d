"""Train TEF heads for a causal LM: `python -m tefviz train tef --variant {paper,causal} ...`.

paper:  the LM is fine-tuned together with its gates, loss = CE + gate_l1 * mean gate, with the
        mask on at t (0.99), AdamW at 5e-5 as published.
causal: the LM is frozen; only the heads (one Linear + LayerNorm per block) learn, by
        distillation: KL(dense LM || LM with keys dropped) with t ~ U(t_min, t_max) per sequence
        and a straight-through hard mask. With `features` (see `tefviz.text.tef.FEATURES`) the
        heads also weigh per-query signals (the query's attention, accumulated attention, key
        norm, a learned prior over age); with `objective="ce"` they learn from the next tokens
        themselves rather than from the dense model (a pruned context can predict better than
        the full one, as TOVA shows out of domain, and distillation cannot learn that).
        Their own main: `python -m tefviz.train.tef --help` (the train tef CLI plus these).
The run is resumable: its state (heads, the paper variant's LM, optimizer, progress) is
saved every `save_every` steps in the run directory; running the same command continues.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from tefviz.device import device_of
from tefviz.errors import DataError, InputError
from tefviz.lm import model_parts
from tefviz.models import load_causal_lm
from tefviz.text.tef import FEATURES, TEF_MODEL_TYPE, TEFConfig, TEFHeads
from tefviz.train import loop
from tefviz.train.lm import command_line
from tefviz.train.loop import (
    load_optimizer,
    load_weights,
    sample_windows,
    save_state,
    saved_progress,
    warmup_cosine,
)

DEFAULTS = {
    "paper": dict(lr=5e-5, lr_heads=5e-5, t=0.99),
    "causal": dict(lr=0.0, lr_heads=3e-3, t=0.5),  # t: the lowest threshold sampled
}


@dataclass
class TEFTrainConfig:
    # help and choices for `python -m tefviz train tef` (one flag per field)
    variant: str = field(
        metadata={
            "help": "paper: the LM fine-tuned with its gates; causal: heads for a frozen LM",
            "choices": tuple(DEFAULTS),
        }
    )
    base: str = field(metadata={"help": "LM checkpoint name, directory or hub name"})
    corpus_dir: Path = field(metadata={"help": "corpus dir (train/valid/test)", "flag": "--corpus"})
    run_dir: Path = field(metadata={"help": "run directory (resumable state)"})
    steps: int = field(default=400, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=8, metadata={"help": "windows per step"})
    block_size: int = field(default=512, metadata={"help": "window length in tokens"})
    lr: float | None = field(default=None, metadata={"help": "the LM's learning rate (paper variant only)"})
    lr_heads: float | None = field(default=None, metadata={"help": "the heads' learning rate"})
    t: float | None = field(
        default=None, metadata={"help": "paper: the training threshold; causal: the lowest threshold sampled"}
    )
    t_max: float = field(default=1.0, metadata={"help": "causal: the highest threshold sampled"})
    features: list[str] = field(
        default_factory=list,
        metadata={
            "help": "causal: per-query features the heads also weigh (none: the plain heads)",
            "choices": FEATURES,
        },
    )
    objective: str = field(
        default="kl",
        metadata={
            "help": "causal: kl (distil from the dense LM) or ce (the next tokens)",
            "choices": ("kl", "ce"),
        },
    )
    lr_features: float | None = field(
        default=None, metadata={"help": "causal: learning rate of the feature weights (unset: 3 x lr_heads)"}
    )
    init_from: Path | None = field(
        default=None,
        metadata={
            "help": "causal: start from another run's heads (its best if it kept them; the tensors that fit)"
        },
    )
    tau: float = field(default=0.05, metadata={"help": "causal: straight-through temperature"})
    budget: bool = field(
        default=False,
        metadata={
            "help": "causal with features: train at fixed kept fractions drawn from U(t, t_max) "
            "(straight-through top-k; validation at 0.5) instead of share thresholds"
        },
    )
    budget_recent: float = field(
        default=0.0,
        metadata={
            "help": "causal with features, at fixed kept fractions: this share of each query's budget goes "
            "to its most recent keys, the logits rank the rest (0.5: H2O's split)"
        },
    )
    init_feature: str | None = field(
        default=None,
        metadata={
            "help": "causal with features: the scalar feature whose weight starts at 1, the others at 0 "
            "(default: attention, TOVA; accumulated with --budget-recent 0.5 starts as H2O)",
            "choices": ("attention", "accumulated", "key_norm"),
        },
    )
    keep_best: bool = field(
        default=False,
        metadata={
            "help": "keep the heads of the best validation loss (the start included); export writes them"
        },
    )
    sink: bool = field(default=True, metadata={"help": "causal: do not always keep the first token"})
    recent: int = field(default=0, metadata={"help": "always keep this many most recent tokens"})
    gate_l1: float = field(default=0.01, metadata={"help": "weight of the mean-gate penalty"})
    warmup_steps: int = field(default=20, metadata={"help": "linear warm-up steps"})
    save_every: int = field(default=50, metadata={"help": "save the resumable state every this many steps"})
    eval_batches: int = field(default=8, metadata={"help": "validation batches per evaluation"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    max_minutes: float | None = field(default=None, metadata={"help": "stop (saved) after this many minutes"})
    argv: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in DEFAULTS:
            raise InputError(f"unknown TEF variant {self.variant!r}; choose one of {sorted(DEFAULTS)}")
        for k, v in DEFAULTS[self.variant].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        if not 0.0 < self.t <= 1.0:
            raise InputError(f"t must lie in (0, 1], got {self.t}")
        if self.variant == "causal" and not self.t <= self.t_max <= 1.0:
            raise InputError(f"t_max must lie in [t, 1], got {self.t_max}")
        if self.objective not in ("kl", "ce"):
            raise InputError(f"unknown objective {self.objective!r}; choose kl or ce")
        if self.lr_features is None:
            self.lr_features = 3 * self.lr_heads
        self.features = list(self.features or [])
        if self.steps < 1 or self.batch_size < 1 or self.block_size < 2:
            raise InputError("steps, batch size and block size must be positive")
        if self.budget and (self.variant != "causal" or not self.features):
            raise InputError("training at fixed kept fractions needs the causal variant with features")
        if self.init_feature is not None and self.init_feature not in self.features:
            raise InputError(f"--init-feature {self.init_feature} is not among the features {self.features}")

    def as_json(self) -> dict:
        d = asdict(self)
        d["corpus_dir"], d["run_dir"] = str(self.corpus_dir), str(self.run_dir)
        d["init_from"] = None if self.init_from is None else str(self.init_from)
        d.pop("argv")
        return d


def encode_split(tokenizer, corpus_dir: Path, split: str, cache: Path) -> np.ndarray:
    """The corpus split as token ids under `tokenizer`, cached as .npy (`tefviz.train.loop`)."""
    path = corpus_dir / f"{split}.txt"
    if not cache.is_file() and not path.is_file():
        raise DataError(f"corpus file {path} is missing; run `python -m tefviz data build` first")
    return loop.encode_split(tokenizer, path, cache)


def tef_loss(heads: TEFHeads, model, x: torch.Tensor, cfg: TEFTrainConfig, rng: np.random.Generator):
    """The training loss of one batch (B, n+1) and what to log."""
    ids, target = x[:, :-1], x[:, 1:]
    if cfg.variant == "paper":
        out = heads(model, ids, cfg.t)
        ce = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1).float(), target.flatten())
        gate = out.scores.mean()
        kept = out.tokens.float().mean()
        info = {"ce": float(ce.detach()), "gate": float(gate.detach()), "kept": float(kept)}
        return ce + cfg.gate_l1 * gate, info
    t = torch.from_numpy(rng.uniform(cfg.t, cfg.t_max, size=ids.shape[0])).float().to(ids.device)
    n = ids.shape[1]
    if cfg.objective == "ce":
        out = heads(model, ids, t, tau=cfg.tau, budget=cfg.budget)
        ce = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1).float(), target.flatten())
        kept = (out.keys.float().sum(-1) / torch.arange(1, n + 1, device=ids.device)).mean()
        return ce, {"ce": float(ce.detach()), "kept": float(kept)}
    with torch.no_grad():
        dense = model(input_ids=ids).logits.float().log_softmax(-1)
    out = heads(model, ids, t, tau=cfg.tau, budget=cfg.budget)
    logq = out.logits.float().log_softmax(-1)
    kl = (dense.exp() * (dense - logq)).sum(-1).mean()
    kept = (out.keys.float().sum(-1) / torch.arange(1, n + 1, device=ids.device)).mean()
    return kl, {"kl": float(kl.detach()), "kept": float(kept)}


@torch.no_grad()
def tef_eval(heads: TEFHeads, model, tokens: np.ndarray, cfg: TEFTrainConfig) -> dict:
    """Validation loss at the training threshold (paper), t = 0.7 (causal) or kept fraction 0.5
    (causal, trained at fixed budgets), on fixed windows."""
    rng = np.random.default_rng(1234)
    was = heads.training
    heads.eval()
    nll, kept = [], []
    t = cfg.t if cfg.variant == "paper" else 0.5 if cfg.budget else 0.7
    for _ in range(cfg.eval_batches):
        x = sample_windows(tokens, cfg.block_size, 4, rng)
        out = heads(model, x[:, :-1], t, budget=cfg.budget)
        logp = out.logits.float().log_softmax(-1)
        nll.append(float(-logp.gather(-1, x[:, 1:, None]).mean()))
        m = out.tokens if out.tokens is not None else out.keys
        kept.append(
            float(
                m.float().mean()
                if out.tokens is not None
                else (m.float().sum(-1) / torch.arange(1, m.shape[-1] + 1)).mean()
            )
        )
    heads.train(was)
    return {
        "t": t,
        "rule": "budget" if cfg.budget else "share",
        "valid_loss": float(np.mean(nll)),
        "valid_ppl": math.exp(float(np.mean(nll))),
        "kept": float(np.mean(kept)),
    }


def train_tef(cfg: TEFTrainConfig) -> Path:
    torch.manual_seed(cfg.seed)
    lm = load_causal_lm(
        cfg.base, device=torch.device("cpu") if not torch.cuda.is_available() else None, dtype=torch.float32
    )
    model = lm.model.float()
    if cfg.block_size > lm.context_length:
        raise InputError(f"block size {cfg.block_size} exceeds the model's context of {lm.context_length}")
    device = device_of(model)
    state = cfg.run_dir / "state"
    tokens = {
        s: encode_split(lm.tokenizer, cfg.corpus_dir, s, cfg.run_dir / f"tokens_{s}.npy")
        for s in ("train", "valid")
    }
    parts = model_parts(model)
    tcfg = TEFConfig(
        variant=cfg.variant,
        n_layer=parts.n_layer,
        d_model=parts.d_model,
        base=str(cfg.base),
        train_t=[cfg.t] if cfg.variant == "paper" else [cfg.t, 1.0],
        sink=cfg.sink,
        recent=cfg.recent,
        gate_l1=cfg.gate_l1,
        features=cfg.features if cfg.variant == "causal" else [],
        budget_recent=cfg.budget_recent,
    )
    if cfg.variant == "causal":
        tcfg.train_t = [cfg.t, cfg.t_max]
    heads = TEFHeads(tcfg).to(device)
    if cfg.init_feature is not None:  # one scalar feature at weight 1 (TOVA's attention is the default)
        scalars = [f for f in tcfg.features if f in ("attention", "accumulated", "key_norm")]
        with torch.no_grad():
            heads.mix.copy_(
                torch.tensor([float(f == cfg.init_feature) for f in scalars]).expand_as(heads.mix)
            )
    if cfg.init_from is not None:
        own = heads.state_dict()
        start = {
            k: v
            for k, v in load_file(str(_start_heads(Path(cfg.init_from)))).items()
            if k in own and own[k].shape == v.shape
        }
        heads.load_state_dict(start, strict=False)
    is_feature = lambda name: name in ("mix", "age_prior") or name.startswith("sharpness.")  # noqa: E731
    feature_params = [p for name, p in heads.named_parameters() if is_feature(name)]
    groups = [
        {
            "params": [p for name, p in heads.named_parameters() if not is_feature(name)],
            "lr": cfg.lr_heads,
            "base_lr": cfg.lr_heads,
        }
    ]
    if feature_params:
        groups.append({"params": feature_params, "lr": cfg.lr_features, "base_lr": cfg.lr_features})
    if cfg.variant == "paper":
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        groups.append({"params": [p for p in model.parameters()], "lr": cfg.lr, "base_lr": cfg.lr})
    else:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    progress = {"step": 0, "elapsed_s": 0.0, "log": [], "commands": []}
    resumed = saved_progress(state)
    if resumed is not None:
        saved, progress = resumed
        same = ("variant", "base", "block_size", "features")
        now = cfg.as_json()
        if {k: saved.get(k, [] if k == "features" else None) for k in same} != {k: now[k] for k in same}:
            raise InputError(f"{cfg.run_dir} holds a run of another variant, base, block size or feature set")
        heads.load_state_dict(load_weights(state, "heads"))
        if cfg.variant == "paper":
            model.load_state_dict(load_weights(state, "model"), strict=False)
            model.tie_weights()
        load_optimizer(state, opt)
    best = None  # (heads' state, validation loss) with keep_best
    if cfg.keep_best:
        if "best" in progress and (state / "best_heads.safetensors").is_file():
            best = (load_weights(state, "best_heads"), progress["best"]["valid_loss"])
        else:  # the start is a candidate too: training may only make it worse
            entry = {"step": progress["step"], **tef_eval(heads, model, tokens["valid"], cfg)}
            progress["log"].append(entry)
            best = _copy_state(heads), entry["valid_loss"]
            progress["best"] = {"step": entry["step"], "valid_loss": entry["valid_loss"]}
    progress["commands"].append(cfg.extra.get("command") or command_line(cfg.argv))
    rng = np.random.default_rng([cfg.seed, progress["step"]])
    heads.train()
    t_last = time.time()
    budget = cfg.max_minutes * 60 if cfg.max_minutes else float("inf")
    bar = tqdm(total=cfg.steps, initial=progress["step"], desc=f"train tef ({cfg.variant})")
    while progress["step"] < cfg.steps and progress["elapsed_s"] < budget:
        step = progress["step"]
        # the shared schedule as a fraction of each group's rate, never below 5 % of it
        scale = warmup_cosine(1.0, step, cfg.warmup_steps, cfg.steps, progress["elapsed_s"], cfg.max_minutes)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * max(scale, 0.05)
        x = sample_windows(tokens["train"], cfg.block_size, cfg.batch_size, rng).to(device)
        loss, info = tef_loss(heads, model, x, cfg, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        if torch.isfinite(norm):
            opt.step()
        else:  # an overflowing batch (e.g. a sharpness term grown large) would turn every weight into NaN
            progress["skipped_steps"] = progress.get("skipped_steps", 0) + 1
            info["skipped"] = 1.0
        now = time.time()
        progress["elapsed_s"] += now - t_last
        t_last = now
        progress["step"] = step + 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in info.items()})
        if progress["step"] % cfg.save_every == 0 or progress["step"] == cfg.steps:
            entry = {"step": progress["step"], **info, **tef_eval(heads, model, tokens["valid"], cfg)}
            progress["log"].append(entry)
            if best is not None and entry["valid_loss"] < best[1]:
                best = _copy_state(heads), entry["valid_loss"]
                progress["best"] = {"step": entry["step"], "valid_loss": entry["valid_loss"]}
            _save_state(state, heads, model, opt, progress, cfg, best)
    bar.close()
    _save_state(state, heads, model, opt, progress, cfg, best)
    return cfg.run_dir


def _start_heads(run_dir: Path) -> Path:
    """The heads another run hands on: its best validation's when it kept them, else its last."""
    best = run_dir / "state" / "best_heads.safetensors"
    return best if best.is_file() else run_dir / "state" / "heads.safetensors"


def _copy_state(heads: TEFHeads) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in heads.state_dict().items()}


def _save_state(state: Path, heads, model, opt, progress: dict, cfg: TEFTrainConfig, best=None) -> None:
    weights = {"heads": heads.state_dict()}
    if best is not None:
        weights["best_heads"] = best[0]
    if cfg.variant == "paper":  # the paper variant fine-tunes the LM too (lm_head is tied: saved once)
        weights["model"] = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_state(state, weights, opt, cfg.as_json(), progress, heads_config=asdict(heads.config))


def _training_data(corpus_dir: Path) -> dict:
    """The card's training data: the corpus manifest's sources when it has one."""
    manifest = corpus_dir / "manifest.json"
    if not manifest.is_file():
        return {
            "sources": [
                {
                    "name": "the base LM's corpus",
                    "description": "train split of the corpus the base LM was trained on",
                    "licence": "see the base model's card",
                }
            ]
        }
    m = json.loads(manifest.read_text())
    train = m.get("splits", {}).get("train", {})
    return {
        "corpus": corpus_dir.name,
        "split": "train",
        "sources": [
            {k: src.get(k) for k in ("name", "package", "licence", "description")}
            for src in m.get("sources", [])
        ],
        "documents_by_source": train.get("by_source"),
        "sha256": train.get("sha256"),
        "note": "KJV Genesis and the Debian Reference (evaluation texts) are in no training corpus",
    }


def export_tef(run_dir: Path, out_dir: Path, command: str | None = None) -> dict:
    """Write a TEF checkpoint from a run's state.

    paper: the fine-tuned LM (fp16 safetensors, tokenizer) plus its gates: it loads as an LM.
    causal: the heads, the base LM's tokenizer and a config naming the base LM.
    Both carry tef.json, tef.safetensors and card.json; `eval text --write-cards` adds metrics.
    """
    from tefviz.device import device_info

    state = run_dir / "state"
    if not (state / "heads.safetensors").is_file():
        raise DataError(f"{run_dir} has no trained TEF state to export")
    cfg = json.loads((state / "config.json").read_text())
    progress = json.loads((state / "progress.json").read_text())
    heads_cfg = TEFConfig(**json.loads((state / "heads_config.json").read_text()))
    heads = TEFHeads(heads_cfg)
    # a run that kept its best validation exports those heads (the card's "best" says which step)
    kept_best = cfg.get("keep_best") and "best" in progress and (state / "best_heads.safetensors").is_file()
    heads.load_state_dict(load_file(str(state / f"{'best_heads' if kept_best else 'heads'}.safetensors")))
    lm = load_causal_lm(cfg["base"], device=torch.device("cpu"), dtype=torch.float32)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if heads_cfg.variant == "paper":
        lm.model.load_state_dict(load_file(str(state / "model.safetensors")), strict=False)
        lm.model.tie_weights()
        lm.model.half().save_pretrained(tmp, safe_serialization=True)
    else:
        (tmp / "config.json").write_text(
            json.dumps(
                {"model_type": TEF_MODEL_TYPE, "variant": "causal", "base": Path(cfg["base"]).name}, indent=1
            )
        )
    lm.tokenizer.save_pretrained(tmp)
    heads_cfg.base = Path(cfg["base"]).name
    heads.config = heads_cfg
    heads.save(tmp)
    card = {
        "name": out_dir.name,
        "kind": "tef",
        "summary": (
            "The paper's TEF (GPT2-TEF design): sigmoid gates per layer, the LM fine-tuned with them"
            if heads_cfg.variant == "paper"
            else "Causal TEF heads (one LayerNorm + Linear per layer) for a frozen LM, distilled from it"
            if not heads_cfg.features
            else "Causal TEF heads for a frozen LM: one LayerNorm + Linear per layer on the hidden "
            "state plus learned per-layer weights of per-query features "
            f"({', '.join(heads_cfg.features)}), trained on "
            + ("the next tokens" if cfg.get("objective") == "ce" else "the dense LM's logits")
            + (
                " at fixed kept fractions (a cache budget per query"
                + (
                    f", {heads_cfg.budget_recent:g} of it for the most recent keys"
                    if heads_cfg.budget_recent
                    else ""
                )
                + "): made for the budget rule (`eval text --budget`, the Text page's fixed fraction)"
                if cfg.get("budget")
                else ""
            )
        ),
        "variant": heads_cfg.variant,
        "features": heads_cfg.features,
        "base_model": heads_cfg.base,
        "architecture": {
            "heads": heads_cfg.n_layer,
            "width": heads_cfg.d_model,
            "head_parameters": sum(p.numel() for p in heads.parameters()),
            "class": type(lm.model).__name__ if heads_cfg.variant == "paper" else "TEFHeads",
            "base_architecture": lm.model.config.model_type,
        },
        "training_data": _training_data(Path(cfg["corpus_dir"])),
        "licence": {"model": "derived from the base LM and its training data; their licences apply"},
        "training": {
            "command": command or " && ".join(dict.fromkeys(progress.get("commands", []))),
            "config": {k: v for k, v in cfg.items() if k not in ("corpus_dir", "run_dir", "extra")},
            "steps": progress["step"],
            "wall_clock_minutes": round(progress["elapsed_s"] / 60, 1),
            **({"exported": {"best_validation": progress["best"]}} if kept_best else {}),
            "device": f"{device_info().name} ({device_info().detail})",
            "log": progress["log"],
        },
        "metrics": {},
    }
    (tmp / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return card


def main(argv: list[str] | None = None) -> None:
    """`python -m tefviz.train.tef`: `python -m tefviz train tef` for the causal variant, plus the
    options that command does not have yet (features, objective, t_max, lr_features)."""
    import argparse
    import shlex
    import sys

    from tefviz.text.tef import FEATURES

    p = argparse.ArgumentParser(prog="python -m tefviz.train.tef", description=main.__doc__)
    p.add_argument("--variant", choices=["paper", "causal"], default="causal")
    p.add_argument("--base", default="checkpoints/tefviz-lm")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--export", type=Path, default=None, help="export a checkpoint here when done")
    p.add_argument("--no-sink", action="store_true")
    p.add_argument("--features", default="", help=f"comma-separated, from {','.join(FEATURES)}")
    p.add_argument("--objective", choices=["kl", "ce"], default="kl")
    p.add_argument("--init-from", type=Path, default=None, help="start from this run directory's heads")
    p.add_argument("--budget", action="store_true", help="train at fixed kept fractions U(t, t_max)")
    p.add_argument("--keep-best", action="store_true", help="export the heads of the best validation loss")
    p.add_argument("--budget-recent", type=float, default=None, help="share of the budget for recent keys")
    p.add_argument("--init-feature", default=None, help="the scalar feature whose weight starts at 1")
    for name, typ in (
        ("steps", int),
        ("batch_size", int),
        ("block_size", int),
        ("lr", float),
        ("lr_heads", float),
        ("lr_features", float),
        ("t", float),
        ("t_max", float),
        ("tau", float),
        ("recent", int),
        ("seed", int),
        ("max_minutes", float),
        ("save_every", int),
        ("eval_batches", int),
    ):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    args = p.parse_args(argv)
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None
        and k
        not in (
            "corpus",
            "export",
            "no_sink",
            "features",
            "variant",
            "base",
            "run_dir",
            "objective",
            "budget",
            "keep_best",
        )
    }
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m tefviz.train.tef", *map(shlex.quote, argv)])
    cfg = TEFTrainConfig(
        variant=args.variant,
        base=args.base,
        corpus_dir=args.corpus,
        run_dir=args.run_dir,
        sink=not args.no_sink,
        features=[f for f in args.features.split(",") if f],
        objective=args.objective,
        budget=args.budget,
        keep_best=args.keep_best,
        extra={"command": command},
        **given,
    )
    train_tef(cfg)
    if args.export:
        export_tef(cfg.run_dir, args.export)


if __name__ == "__main__":
    main()
