"""Train the embedded language models from scratch: GPT-2 (`--arch gpt2`, the shipped
tefviz-lm) or Llama (`--arch llama`: rotary positions, RMSNorm, SwiGLU, grouped-query attention).

Both architectures share one training loop; only `build_model` differs. One process by
default; under `torchrun --nproc-per-node N` it runs data-parallel (DDP; gloo on CPU, NCCL on
GPU), each rank drawing its own windows. Training is
resumable: `state/` in the run directory holds weights, optimiser and progress.
The learning-rate schedule follows whichever budget, steps or minutes, runs out
first, so a time-boxed CPU run still ends with a fully decayed learning rate; `finish_by`
(a wall-clock deadline) shortens the time budget so that a run on a lent machine ends, decayed
and saved, before the machine is taken back. On CUDA the training split lives on the GPU and
batches are gathered there; the loss is read back only when it is shown or logged.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm import tqdm
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from tefviz.device import autocast, pick_device, pick_dtype
from tefviz.errors import DataError
from tefviz.train.loop import (
    encode_split,
    load_optimizer,
    sample_windows,
    save_state,
    saved_progress,
    warmup_cosine,
)
from tefviz.train.tokenizer import train_bpe

PRESETS: dict[str, dict] = {
    # the shipped embedded model, sized for a 2-core CPU and a ~100-minute budget. No dropout:
    # a few epochs at most is too little to overfit, and dropout costs ~30% of step time on CPU.
    "small": dict(
        n_layer=6,
        n_embd=256,
        n_head=4,
        block_size=512,
        vocab_size=8192,
        dropout=0.0,
        batch_size=8,
        lr=1.5e-3,
        warmup_steps=200,
        max_steps=20_000,
    ),
    # for tests and smoke runs: finishes in seconds
    "tiny": dict(
        n_layer=2,
        n_embd=64,
        n_head=2,
        block_size=64,
        vocab_size=512,
        batch_size=8,
        lr=3e-3,
        warmup_steps=5,
        max_steps=40,
        eval_every=20,
        eval_windows=8,
    ),
    # The second embedded model: Llama, 2,048-token context, sized so that its plain fp32 forward at
    # 2,048 tokens takes ~0.3 s on the project's 2-core CPU (see LLAMA_CPU_TIMINGS) and its fp16
    # weights stay far under 30 MB. Batch and steps are for a GPU; a CPU run is time-boxed anyway.
    "llama-small": dict(
        arch="llama",
        n_layer=6,
        n_embd=320,
        n_head=4,
        n_kv_head=2,
        intermediate_size=864,
        rope_theta=10000.0,
        block_size=2048,
        vocab_size=8192,
        dropout=0.0,
        batch_size=48,
        lr=2e-3,
        warmup_steps=100,
        max_steps=100_000,
        eval_every=200,
        eval_windows=96,
        save_every=200,
    ),
    # for tests: every Llama feature (GQA, rotary, SwiGLU), seconds on a CPU
    "llama-tiny": dict(
        arch="llama",
        n_layer=2,
        n_embd=64,
        n_head=4,
        n_kv_head=2,
        intermediate_size=128,
        block_size=64,
        vocab_size=512,
        batch_size=8,
        lr=3e-3,
        warmup_steps=5,
        max_steps=40,
        eval_every=20,
        eval_windows=8,
    ),
}

ARCHS = ("gpt2", "llama")
# fields only the Llama architecture uses; left out of a GPT-2 run's saved config, so GPT-2 runs
# write exactly what they wrote before Llama support
LLAMA_FIELDS = ("arch", "n_kv_head", "intermediate_size", "rope_theta")


@dataclass
class TrainConfig:
    """One `train lm` run; `python -m tefviz train lm` has one flag per field (help: the metadata)."""

    corpus_dir: Path = field(
        default=Path("data/corpus"), metadata={"help": "corpus dir (train/valid/test)", "flag": "--corpus"}
    )
    run_dir: Path = field(
        default=Path("runs/lm"), metadata={"help": "run directory: tokenizer, tokens, resumable state"}
    )
    n_layer: int = field(default=6, metadata={"help": "transformer blocks"})
    n_embd: int = field(default=256, metadata={"help": "model width"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    block_size: int = field(default=512, metadata={"help": "context length in tokens"})
    vocab_size: int = field(
        default=8192, metadata={"help": "BPE vocabulary (the tokenizer is trained once per run)"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout probability"})
    batch_size: int = field(default=8, metadata={"help": "windows per step (per process)"})
    lr: float = field(default=1.5e-3, metadata={"help": "peak learning rate"})
    min_lr_frac: float = field(
        default=0.05, metadata={"help": "the cosine schedule ends at this fraction of lr"}
    )
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=200, metadata={"help": "linear warm-up steps"})
    max_steps: int = field(default=20_000, metadata={"help": "step budget"})
    max_minutes: float | None = field(
        default=None, metadata={"help": "time budget (the schedule follows whichever ends first)"}
    )
    finish_by: float | None = field(
        default=None, metadata={"help": "unix time by which training must end (the time budget shrinks)"}
    )
    eval_every: int = field(
        default=500, metadata={"help": "evaluate on the valid split every this many steps"}
    )
    eval_windows: int = field(default=64, metadata={"help": "valid windows per evaluation"})
    save_every: int = field(default=250, metadata={"help": "save the resumable state every this many steps"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (unset: the device policy's)"})
    dtype: str | None = field(
        default=None, metadata={"help": "float32, bfloat16, ... (unset: the device policy's)"}
    )
    argv: list[str] | None = None  # the CLI arguments, recorded in the model card
    extra: dict = field(default_factory=dict)
    arch: str = field(
        default="gpt2", metadata={"help": "architecture (gpt2 without a preset)", "choices": ARCHS}
    )
    n_kv_head: int | None = field(
        default=None, metadata={"help": "llama: key/value heads, grouped-query attention (unset: n_head)"}
    )
    intermediate_size: int | None = field(
        default=None, metadata={"help": "llama: SwiGLU width (unset: 8/3 n_embd rounded to 32)"}
    )
    rope_theta: float = field(default=10000.0, metadata={"help": "llama: rotary base"})

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise DataError(f"unknown architecture {self.arch!r}; choose one of {ARCHS}")
        if self.arch == "llama":
            self.n_kv_head = self.n_kv_head or self.n_head
            self.intermediate_size = self.intermediate_size or 32 * round(8 * self.n_embd / 3 / 32)
            if self.n_embd % self.n_head or self.n_head % self.n_kv_head:
                raise DataError(
                    f"n_embd {self.n_embd} must divide into n_head {self.n_head} heads, "
                    f"and n_head into n_kv_head {self.n_kv_head} groups"
                )

    def as_json(self) -> dict:
        d = asdict(self)
        d["corpus_dir"], d["run_dir"] = str(self.corpus_dir), str(self.run_dir)
        d.pop("argv")
        d.pop("finish_by")
        if self.arch == "gpt2":
            for k in LLAMA_FIELDS:
                d.pop(k)
        return d


def _dist() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def prepare_tokens(cfg: TrainConfig) -> tuple[PreTrainedTokenizerFast, dict[str, np.ndarray]]:
    """Train (once) the tokenizer and encode every split (cached in the run dir)."""
    tok_dir = cfg.run_dir / "tokenizer"
    files = {s: cfg.corpus_dir / f"{s}.txt" for s in ("train", "valid", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"corpus files missing: {missing}; run `python -m tefviz data build` first")
    rank, _ = _dist()
    if rank == 0 and not (tok_dir / "tokenizer.json").is_file():
        train_bpe([files["train"]], cfg.vocab_size).save_pretrained(tok_dir)
    _barrier()
    tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    arrays = {}
    for split, path in files.items():
        cache = cfg.run_dir / f"tokens_{split}.npy"
        if rank == 0 and not cache.is_file():
            t0 = time.time()
            n = len(encode_split(tok, path, cache))
            print(f"encoded {split}: {n:,} tokens in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
        _barrier()
        arrays[split] = np.load(cache, mmap_mode="r")
    return tok, arrays


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


ARCHITECTURE_KEYS = ("n_layer", "n_embd", "n_head", "block_size", "vocab_size", *LLAMA_FIELDS)


def config_from_json(d: dict) -> TrainConfig:
    """A TrainConfig from a run's saved state/config.json (unknown keys ignored)."""
    names = {f.name for f in fields(TrainConfig)}
    kept = {k: v for k, v in d.items() if k in names}
    kept["corpus_dir"], kept["run_dir"] = Path(kept["corpus_dir"]), Path(kept["run_dir"])
    return TrainConfig(**kept)


def load_run_weights(model: PreTrainedModel, path: Path) -> None:
    """Load a run's saved weights; only the tied lm_head may be absent from the file."""
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise DataError(
            f"saved weights in {path} do not fit the model: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}"
        )
    model.tie_weights()


def build_model(cfg: TrainConfig, tok: PreTrainedTokenizerFast) -> PreTrainedModel:
    """A freshly initialised model of the run's architecture, embeddings tied to the LM head."""
    if cfg.arch == "llama":
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=cfg.n_embd,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.n_layer,
            num_attention_heads=cfg.n_head,
            num_key_value_heads=cfg.n_kv_head,
            max_position_embeddings=cfg.block_size,
            rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
            rms_norm_eps=1e-5,
            attention_dropout=cfg.dropout,
            hidden_act="silu",
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.eos_token_id,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def lr_at(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """The shared schedule (`tefviz.train.loop.warmup_cosine`) with this run's settings."""
    return warmup_cosine(
        cfg.lr, step, cfg.warmup_steps, cfg.max_steps, elapsed_s, cfg.max_minutes, cfg.min_lr_frac
    )


@torch.no_grad()
def eval_loss(model, tokens: np.ndarray, cfg: TrainConfig, device, dtype) -> float:
    """Mean loss on fixed, evenly spaced validation windows (same every call)."""
    model.eval()
    n = min(cfg.eval_windows, max(1, (len(tokens) - 1) // cfg.block_size))
    starts = np.linspace(0, len(tokens) - cfg.block_size - 1, n).astype(int)
    losses = []
    for i in range(0, n, cfg.batch_size):
        rows = [tokens[s : s + cfg.block_size + 1].astype(np.int64) for s in starts[i : i + cfg.batch_size]]
        x = torch.from_numpy(np.stack(rows)).to(device)
        with autocast(device, dtype):
            losses.append(model(input_ids=x[:, :-1], labels=x[:, :-1]).loss.float().item())
    model.train()
    return float(np.mean(losses))


def train_lm(cfg: TrainConfig) -> Path:
    """Train (or resume) and return the run directory; state is saved periodically."""
    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
        torch.distributed.init_process_group(backend)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    dtype, _ = pick_dtype(device, cfg.dtype)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tok, data = prepare_tokens(cfg)
    if len(data["train"]) < cfg.block_size + 2:
        raise DataError("training split is shorter than one block")

    model = build_model(cfg, tok).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel per step on a GPU
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        **fused,
    )
    state_dir = cfg.run_dir / "state"
    progress = {"step": 0, "elapsed_s": 0.0, "tokens_seen": 0, "log": [], "commands": []}
    resumed = saved_progress(state_dir)
    if resumed is not None:
        saved, progress = resumed
        saved.setdefault("arch", "gpt2")  # GPT-2 runs do not record it
        keys = ARCHITECTURE_KEYS if "llama" in (cfg.arch, saved["arch"]) else ARCHITECTURE_KEYS[:5]
        changed = {k: (saved.get(k), getattr(cfg, k)) for k in keys if saved.get(k) != getattr(cfg, k)}
        if changed:
            raise DataError(
                f"{cfg.run_dir} was trained with a different architecture {changed} "
                "(saved, requested); use a new --run-dir"
            )
        load_run_weights(model, state_dir / "model.safetensors")
        # weights carried back from another machine come without Adam's moments
        if not load_optimizer(state_dir, opt, device) and rank == 0:
            print("no saved optimiser state: Adam starts afresh", file=sys.stderr)
        if rank == 0:
            print(f"resuming at step {progress['step']}", file=sys.stderr)
    # every command that trained this run, first one first: the model card quotes them
    progress.setdefault("commands", []).append(command_line(cfg.argv))
    if cfg.finish_by is not None:
        # the deadline caps the time budget (and so the lr schedule) from here on
        left_s = max(0.0, cfg.finish_by - time.time())
        budget_min = (progress["elapsed_s"] + left_s) / 60
        if not cfg.max_minutes or budget_min < cfg.max_minutes:
            cfg.max_minutes = budget_min
            if rank == 0:
                print(
                    f"deadline: {left_s:.0f} s left, time budget {budget_min:.2f} min",
                    file=sys.stderr,
                    flush=True,
                )
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    # on a GPU the training tokens live there and batches are gathered on the device
    train_on_device = (
        torch.from_numpy(np.asarray(data["train"]).astype(np.int32)).to(device)
        if device.type == "cuda"
        else None
    )
    sync_every = 1 if device.type == "cpu" else 25  # reading the loss waits for the GPU
    # batches and dropout depend on (seed, rank, step): distinct per rank, reproducible on resume
    seeds = np.random.SeedSequence([cfg.seed, rank, progress["step"]])
    rng = np.random.default_rng(seeds)
    torch.manual_seed(int(seeds.generate_state(1)[0]))

    def save() -> None:
        if rank != 0:
            return
        # lm_head is tied to the token embedding: saved once
        sd = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
        save_state(state_dir, {"model": sd}, opt, cfg.as_json(), progress)

    def log_eval(train_loss: float) -> None:
        v = eval_loss(model, data["valid"], cfg, device, dtype)
        progress["log"].append(
            {
                "step": progress["step"],
                "train_loss": round(train_loss, 4),
                "valid_loss": round(v, 4),
                "tokens_seen": progress["tokens_seen"],
                "elapsed_s": round(progress["elapsed_s"], 1),
            }
        )
        bar.write(f"step {progress['step']}: valid loss {v:.4f} (ppl {math.exp(v):.2f})")

    last_loss = float("nan")

    def budget_left() -> bool:
        if progress["step"] >= cfg.max_steps:
            return False
        return not cfg.max_minutes or progress["elapsed_s"] < cfg.max_minutes * 60

    model.train()
    # a terminal gets a live bar; a log file (a remote run) gets a line every 20 s
    tty = sys.stderr.isatty()
    bar = tqdm(
        total=cfg.max_steps,
        initial=progress["step"],
        disable=rank != 0,
        desc="train lm",
        dynamic_ncols=True,
        mininterval=0.1 if tty else 20,
        maxinterval=10 if tty else 60,
    )
    t_last = time.time()
    while True:
        stop = not budget_left()
        if world > 1:
            # rank 0's clock decides for everyone, so no rank waits in an allreduce alone
            flag = torch.tensor([int(stop)], device=device)
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break
        step = progress["step"]
        lr = lr_at(cfg, step, progress["elapsed_s"])
        for g in opt.param_groups:
            g["lr"] = lr
        x = sample_windows(data["train"], cfg.block_size, cfg.batch_size, rng, train_on_device).to(device)
        with autocast(device, dtype):
            loss = ddp(input_ids=x[:, :-1], labels=x[:, :-1]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        now = time.time()
        progress["elapsed_s"] += now - t_last
        t_last = now
        progress["step"] = step + 1
        progress["tokens_seen"] += cfg.batch_size * cfg.block_size * world
        bar.update(1)
        evaluating = rank == 0 and progress["step"] % cfg.eval_every == 0
        if evaluating or progress["step"] % sync_every == 0:
            last_loss = loss.item()
            postfix = {"loss": f"{last_loss:.3f}", "lr": f"{lr:.2e}"}
            if cfg.max_minutes:  # the step total is a cap; time usually ends the run first
                postfix["time_left"] = f"{max(0.0, cfg.max_minutes - progress['elapsed_s'] / 60):.0f}m"
            bar.set_postfix(postfix, refresh=False)
        if evaluating:
            log_eval(last_loss)
        if progress["step"] % cfg.save_every == 0:
            save()
    bar.close()
    if progress["step"] and progress["step"] % sync_every:
        last_loss = loss.item()
    if rank == 0 and (not progress["log"] or progress["log"][-1]["step"] != progress["step"]):
        log_eval(last_loss)
    save()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return cfg.run_dir


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, for model cards (torchrun's launcher is named as such)."""
    args = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    world = _dist()[1]
    launcher = f"torchrun --nproc-per-node {world} -m tefviz" if world > 1 else "python -m tefviz"
    return f"{launcher} {args}"
