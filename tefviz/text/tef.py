"""Token evaluation functions (TEF) for any supported causal LM: the paper's design and a causal
one that works.

Both put one small head per layer on the layer's input and read its output as each token's
share of "explained variance"; the keep rule (`tefviz.text.keep`) turns shares into a kept
set at threshold t. They differ in everything that decides whether dropping works:

paper (GPT2-TEF, faithful): gate g = sigmoid(Linear(h)); the block input is multiplied by g;
    shares g / sum(g over still-active tokens) over the whole sequence; dropped tokens'
    inputs are zeroed and masked as keys, and stay dropped in later blocks; the LM is
    fine-tuned with the heads, loss = CE + 0.01 * mean gate, trained with the mask at t=0.99.
causal (this project's): score s = Linear(LayerNorm(h)); query i keeps the keys of its
    prefix by softmax shares over that prefix (so shares sum to 1 and nothing after i is
    used: it runs token by token); a dropped token leaves the context of later tokens at that
    block while its own prediction is made in full, as the newest token is in decoding; the
    LM is frozen and the heads learn by distillation: KL(dense || dropped) with t drawn from
    U(t_min, 1) and a straight-through hard mask.
causal with features (`TEFConfig.features`, empty for the original heads): the score of key j
    for query i at layer l adds to the head's score of h_j learned per-layer terms read from the
    dense pass of the prefix: the query's own attention to j ("attention", TOVA's signal), the
    attention j has received so far ("accumulated", H2O's), j's key norm ("key_norm") and a
    prior over the age i - j in log2 buckets ("age", a learned recency window), all of these
    scaled per query by exp(Linear(h_i)) of the query's own hidden state ("sharpness": how
    peaked its shares are, so how much it keeps, per context). The scores are
    then per query, (L, n, n); the keep rule is the same. Read from a dense pass, as the KV-cache
    baselines are, and initialised to TOVA (attention weight 1, everything else 0).
under a fixed budget (`forward(..., budget=True)`): t is each query's kept fraction and its top keys by
    logit stay (`tefviz.text.keep.budget_keep_mask`); feature heads with `budget_recent` first give
    that share of the budget to the most recent keys (H2O's split: with the accumulated weight at 1
    and the rest 0 they are H2O), and train through a straight-through top-k
    (`per_query_budget_weights`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tefviz.device import pick_device, place_beside
from tefviz.errors import CheckpointError, InputError
from tefviz.lm import Capture, LayerEdit, intervene, model_parts
from tefviz.lm.forward import check_length
from tefviz.text.keep import always_kept, budget_beyond, budget_keep_mask, cumulative_keep_mask, recent_window

VARIANTS = ("paper", "causal")
TEF_CONFIG = "tef.json"
TEF_WEIGHTS = "tef.safetensors"
TEF_MODEL_TYPE = "tefviz-tef"  # config.json model_type of a heads-only checkpoint
# per-query features a causal TEF may add to its heads' scores (TEFConfig.features)
FEATURES = ("attention", "accumulated", "key_norm", "age", "sharpness")
_SCALAR_FEATURES = ("attention", "accumulated", "key_norm")  # one learned weight per layer each
AGE_BUCKETS = 12  # age 0, 1, 2-3, 4-7, ..., 1024 and more
_LOG_EPS = 1e-6
SHARPNESS_MAX = 12.0  # the sharpness logit's bound (the shipped heads stay below 10.4 on every sample)


def age_buckets(age: torch.Tensor) -> torch.Tensor:
    """Keys' ages (query position - key position) -> the age prior's buckets: 0 for the query
    itself (and keys after it), then 1 + floor(log2 age), capped at the last bucket."""
    age = age.clamp_min(0)
    bucket = torch.where(age > 0, torch.floor(torch.log2(age.clamp_min(1).float())).long() + 1, 0)
    return bucket.clamp_max(AGE_BUCKETS - 1)


@dataclass
class TEFConfig:
    variant: str
    n_layer: int
    d_model: int
    base: str  # the LM checkpoint the heads were trained on
    train_t: list[float]  # paper: [0.99]; causal: [t_min, 1.0]
    sink: bool = True  # causal: the first token is always kept
    recent: int = 0  # causal: each query also keeps this many predecessors
    gate_l1: float = 0.01  # paper: weight of the mean-gate penalty
    # causal: per-query features beside the hidden state (FEATURES); empty: the original heads
    features: list[str] = field(default_factory=list)
    # causal with features, at a fixed kept fraction only: this share of each query's budget (beyond
    # itself and the sink) goes to its most recent keys before the logits rank the rest (H2O's split)
    budget_recent: float = 0.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"unknown TEF variant {self.variant!r}; choose one of {VARIANTS}")
        unknown = sorted(set(self.features or ()) - set(FEATURES))
        if unknown:
            raise InputError(f"unknown TEF features {unknown}; choose from {FEATURES}")
        self.features = [f for f in FEATURES if f in set(self.features or ())]  # canonical order
        if self.features and self.variant != "causal":
            raise InputError("features are for the causal TEF variant only")
        if not 0.0 <= self.budget_recent <= 1.0 or (self.budget_recent and not self.features):
            raise InputError("budget_recent is a share in [0, 1], for causal heads with features")

    @property
    def per_query(self) -> bool:
        """Scores depend on the query (L, n, n), read from a dense pass first."""
        return bool(self.features)


@dataclass
class TEFPass:
    logits: torch.Tensor  # (B, n, V)
    scores: torch.Tensor  # (L, B, n): paper gates in (0, 1); causal exp(score) > 0
    tokens: torch.Tensor | None  # paper: (L, B, n) tokens active at each block
    keys: torch.Tensor | None  # causal: (L, B, n, n) keys each query keeps at each block


class TEFHeads(nn.Module):
    def __init__(self, config: TEFConfig) -> None:
        super().__init__()
        self.config = config
        self.heads = nn.ModuleList(nn.Linear(config.d_model, 1) for _ in range(config.n_layer))
        if config.variant == "paper":
            # start with open gates (sigmoid(3) ~ 0.95) so fine-tuning starts near the dense model
            for h in self.heads:
                nn.init.zeros_(h.weight)
                nn.init.constant_(h.bias, 3.0)
        else:
            self.norms = nn.ModuleList(nn.LayerNorm(config.d_model) for _ in range(config.n_layer))
            for h in self.heads:
                nn.init.normal_(h.weight, std=0.02)
                nn.init.zeros_(h.bias)
            scalars = [f for f in config.features if f in _SCALAR_FEATURES]
            if scalars:
                # per layer, one weight per scalar feature; the attention starts at 1 (TOVA)
                init = torch.tensor([1.0 if f == "attention" else 0.0 for f in scalars])
                self.mix = nn.Parameter(init.expand(config.n_layer, -1).clone())
            if "age" in config.features:
                self.age_prior = nn.Parameter(torch.zeros(config.n_layer, AGE_BUCKETS))
            if "sharpness" in config.features:
                # per layer, query i's own hidden state scales its feature terms by exp(Linear(h_i)):
                # sharper (TOVA-like) or flatter (towards the recency window) per context; starts at 1
                self.sharpness = nn.ModuleList(nn.Linear(config.d_model, 1) for _ in range(config.n_layer))
                for lin in self.sharpness:
                    nn.init.zeros_(lin.weight)
                    nn.init.zeros_(lin.bias)
            if config.features:
                for h in self.heads:  # start from the features alone (TOVA when "attention" is on)
                    nn.init.zeros_(h.weight)

    # -- the two forward passes -------------------------------------------------------------

    def forward(
        self,
        model: nn.Module,
        ids: torch.Tensor,
        t: float | torch.Tensor = 1.0,
        tau: float | None = None,
        budget: bool = False,
    ) -> TEFPass:
        """Run `model` on ids (B, n) with this TEF dropping tokens at threshold t (a float, or
        one per batch row for the causal variant). tau: straight-through temperature for
        training the causal heads (None: hard masks only). budget (causal variant, hard masks):
        t is each query's kept fraction (`budget_keep_mask`) instead of a share of its scores."""
        if budget and self.config.variant != "causal":
            raise InputError("a fixed kept fraction is a rule of the causal TEF")
        if budget and not self.config.per_query and (tau is not None or not isinstance(t, float | int)):
            raise InputError("the plain causal TEF decides under a fixed kept fraction with hard masks only")
        parts = model_parts(model)
        if parts.n_layer != self.config.n_layer or parts.d_model != self.config.d_model:
            raise CheckpointError(
                f"TEF heads for {self.config.n_layer} layers x {self.config.d_model} do not fit a model "
                f"with {parts.n_layer} x {parts.d_model}"
            )
        if ids.dim() == 1:
            ids = ids[None]
        check_length(parts, ids.shape[1])
        place_beside(self, parts.embedding.weight)  # heads stay fp32, on the LM's device
        if self.config.per_query:
            return self._forward_per_query(model, ids, t, tau, budget)
        plan = (
            _PaperPlan(self, float(t))
            if self.config.variant == "paper"
            else _CausalPlan(self, t, tau, budget)
        )
        with intervene(model, plan):
            logits = model(input_ids=ids, use_cache=False).logits
        scores = torch.stack(plan.scores)
        if self.config.variant == "paper":
            return TEFPass(logits, scores, torch.stack(plan.kept), None)
        return TEFPass(logits, scores, None, torch.stack(plan.kept))

    def feature_logit(
        self, layer: int, raw: dict[str, torch.Tensor], age: torch.Tensor, sharpness: torch.Tensor | None
    ) -> torch.Tensor:
        """The per-query part of `layer`'s logit of each key, from its raw features (positive,
        broadcastable: "attention" the query's, "accumulated" what the key received so far,
        "key_norm"), the keys' ages (query position - key position) and the query's sharpness logit:
        the learned mix of the features' logs plus the age prior, scaled by exp(sharpness). The one
        formula training (`per_query_logits`, whole texts) and decoding (an evicted cache, on the
        CPU) both use; parameters go to the features' device."""
        cfg = self.config
        device = age.device
        logit = torch.zeros((), device=device)
        for k, f in enumerate(f for f in cfg.features if f in _SCALAR_FEATURES):
            x = raw[f].float()
            feat = x.clamp_min(_LOG_EPS).log() if f == "key_norm" else (x + _LOG_EPS).log()
            logit = logit + self.mix[layer, k].to(device) * feat
        if "age" in cfg.features:
            logit = logit + self.age_prior[layer].to(device)[age_buckets(age)]
        if sharpness is not None:  # bounded: an unbounded exp grew to 1e34 in training and overflowed
            logit = logit * sharpness.float().to(device).clamp_max(SHARPNESS_MAX).exp()
        return logit

    def per_query_logits(self, model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """(L, B, n, n) logits of a causal TEF with features: row i scores keys 0..i as query i
        sees them (entries above the diagonal are meaningless), from a dense pass of ids (B, n).
        Gradients reach the heads; the LM's pass runs without them."""
        cfg = self.config
        recorder = _Recorder()
        wants_keys = "key_norm" in cfg.features
        wants_attention = any(f in cfg.features for f in ("attention", "accumulated"))
        capture = Capture(weights=wants_attention, qkv=wants_keys)
        with torch.no_grad(), intervene(model, recorder, capture):
            model(input_ids=ids, use_cache=False)
        n = ids.shape[1]
        positions = torch.arange(n, device=ids.device)
        age = positions[:, None] - positions[None, :]  # (q, k)
        out = []
        for layer in range(cfg.n_layer):
            head, norm = self.heads[layer], self.norms[layer]
            hn = norm(recorder.inputs[layer].to(norm.weight.dtype))
            rec = capture.records.get(layer)
            raw = {}
            if wants_attention:
                raw["attention"] = rec.weights.float().mean(1)  # (B, q, k)
                raw["accumulated"] = raw["attention"].cumsum(1)
            if wants_keys:  # mean over heads; low norms were the ones to keep (Devoto et al.)
                raw["key_norm"] = rec.key.float().norm(dim=-1).mean(1)[:, None, :]
            sharp = None
            if "sharpness" in cfg.features:  # row i: h_i
                sharp = self.sharpness[layer](hn).squeeze(-1).float()[:, :, None]
            logit = self.feature_logit(layer, raw, age, sharp)  # row i: query i
            logit = logit + head(hn).squeeze(-1).float()[:, None, :]  # (B, 1, n): the key's own score
            out.append(logit.expand(ids.shape[0], n, n))
        return torch.stack(out)

    def _forward_per_query(self, model, ids, t, tau, budget: bool = False) -> TEFPass:
        logits = self.per_query_logits(model, ids)  # (L, B, n, n)
        b = ids.shape[0]
        t_rows = torch.as_tensor(t, dtype=torch.float32, device=ids.device).reshape(-1).expand(b)
        cfg = self.config
        weights, kept, scores = [], [], []
        for layer in range(cfg.n_layer):
            if budget:
                w, keep, e = per_query_budget_weights(
                    logits[layer], t_rows, cfg.sink, cfg.recent, tau, cfg.budget_recent
                )
            else:
                w, keep, e = per_query_key_weights(logits[layer], t_rows, cfg.sink, cfg.recent, tau)
            weights.append(w)
            kept.append(keep)
            scores.append(e.detach())
        dense = tau is None and isinstance(t, float | int) and t >= 1
        plan = None if dense else _KeyPlan(kept if tau is None else weights)
        with intervene(model, plan):
            out = model(input_ids=ids, use_cache=False).logits
        return TEFPass(out, torch.stack(scores), None, torch.stack(kept))

    # -- files ------------------------------------------------------------------------------

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(out / TEF_WEIGHTS))
        (out / TEF_CONFIG).write_text(json.dumps(asdict(self.config), indent=1))

    @classmethod
    def load(cls, path: Path, device: torch.device | str | None = None) -> TEFHeads:
        """Heads from a TEF checkpoint, on `device` (default: the device policy's, where the LM
        loads), or CheckpointError saying why not."""
        try:
            config = TEFConfig(**json.loads((path / TEF_CONFIG).read_text()))
        except FileNotFoundError as e:
            raise CheckpointError(f"{path.name!r} has no {TEF_CONFIG}: not a TEF checkpoint") from e
        except (json.JSONDecodeError, TypeError, InputError) as e:
            raise CheckpointError(f"{path.name!r}: {TEF_CONFIG} is not a valid TEF config", str(e)) from e
        heads = cls(config)
        try:
            state = load_file(str(path / TEF_WEIGHTS))
        except Exception as e:  # safetensors raises several types for corrupt files
            raise CheckpointError(f"{path.name!r}: {TEF_WEIGHTS} is missing or corrupt", repr(e)) from e
        try:
            heads.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path.name!r}: {TEF_WEIGHTS} does not fit {TEF_CONFIG}", str(e)) from e
        return heads.eval().to(pick_device(device))


class _Recorder:
    """A plan that edits nothing and keeps each layer's input."""

    def __init__(self) -> None:
        self.inputs: dict[int, torch.Tensor] = {}

    def edit(self, layer: int, h: torch.Tensor) -> None:
        self.inputs[layer] = h.detach()
        return None


class _KeyPlan:
    """Fixed per-layer key weights or masks (B, n, n)."""

    def __init__(self, keys: list[torch.Tensor]) -> None:
        self.keys = keys

    def edit(self, layer: int, h: torch.Tensor) -> LayerEdit:
        k = self.keys[layer]
        return LayerEdit(key_weight=k if k.dtype == torch.bool else k.to(h.dtype))


class _PaperPlan:
    """The paper's TEF as a plan: at each layer a sigmoid gate per token, read off the layer's
    input; the gate multiplies the input, tokens outside the kept share are zeroed and hidden as
    keys, and stay dropped in later layers."""

    def __init__(self, heads: TEFHeads, t: float) -> None:
        self.heads, self.t = heads, t
        self.active: torch.Tensor | None = None
        self.scores: list[torch.Tensor] = []
        self.kept: list[torch.Tensor] = []

    def edit(self, layer: int, h: torch.Tensor) -> LayerEdit:
        head = self.heads.heads[layer]
        g = torch.sigmoid(head(h.to(head.weight.dtype)).squeeze(-1).float())  # heads stay fp32
        active = torch.ones_like(g, dtype=torch.bool) if self.active is None else self.active
        with torch.no_grad():
            shares = (g * active) / (g * active).sum(-1, keepdim=True).clamp_min(1e-30)
            keep = cumulative_keep_mask(shares, self.t, valid=active)
        self.active = keep
        self.scores.append(g)
        self.kept.append(keep)
        return LayerEdit(token_weight=keep, mode="zero", gate=g.to(h.dtype))


class _CausalPlan:
    """This project's causal TEF as a plan: at each layer a score per token, read off the layer's
    input; each query keeps the keys of its prefix by softmax shares (`causal_key_weights`)."""

    def __init__(
        self, heads: TEFHeads, t: float | torch.Tensor, tau: float | None, budget: bool = False
    ) -> None:
        self.heads, self.t, self.tau, self.budget = heads, t, tau, budget
        self.scores: list[torch.Tensor] = []
        self.kept: list[torch.Tensor] = []

    def edit(self, layer: int, h: torch.Tensor) -> LayerEdit | None:
        head, norm = self.heads.heads[layer], self.heads.norms[layer]
        t_rows = torch.as_tensor(self.t, dtype=torch.float32, device=h.device).reshape(-1).expand(h.shape[0])
        logit = head(norm(h.to(norm.weight.dtype))).squeeze(-1).float()  # (B, n); heads stay fp32
        self.scores.append(logit.exp())
        if self.tau is None and isinstance(self.t, float | int) and self.t >= 1:
            # the scoring pass (t = 1) keeps every key: the dense pass, without building n x n masks
            n = h.shape[1]
            self.kept.append(_causal(n, h.device).expand(h.shape[0], n, n))
            return None
        cfg = self.heads.config
        if self.budget:  # a fixed kept fraction: each query keeps its top keys by logit
            keep = budget_keep_mask(
                logit.detach(), float(self.t), always_kept(h.shape[1], cfg.sink, cfg.recent, h.device)
            )
            self.kept.append(keep)
            return LayerEdit(key_weight=keep)
        w, keep = causal_key_weights(logit, t_rows, cfg.sink, cfg.recent, self.tau)
        self.kept.append(keep)
        # hard masks as bool take the fast SDPA path; training needs the straight-through weights
        return LayerEdit(key_weight=keep if self.tau is None else w.to(h.dtype))


def causal_key_weights(
    logit: torch.Tensor, t: torch.Tensor, sink: bool, recent: int, tau: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, which keys to keep: logits (B, n), thresholds (B,) -> (weights, hard mask),
    both (B, n, n).

    Query i's shares are the softmax of the logits over keys 0..i; it keeps keys in
    descending share order while the share of the keys ranked at or above them is <= t (its
    top key always), plus itself, the sink and the recent window. With tau, the weights are
    the hard mask forward and sigmoid((t - share ranked above) / tau) backward
    (straight-through), so the heads learn which keys to keep.
    """
    b, n = logit.shape
    causal = _causal(n, logit.device)
    # one max over the text keeps exp finite; shares are invariant to the shift
    e = (logit - logit.detach().amax(-1, keepdim=True)).exp()  # (B, n)
    order = n - 1 - torch.sort(logit.detach().flip(-1), dim=-1, descending=True, stable=True).indices
    sorted_e = torch.gather(e, -1, order)  # (B, n) in rank order
    always = always_kept(n, sink, recent, logit.device)
    if tau is None:
        hard = _hard_keep(logit, t, order, sorted_e, always, causal)
        return hard.float(), hard
    visible = order[:, None, :] <= torch.arange(n, device=logit.device)[None, :, None]  # (B, q, r)
    running = (sorted_e[:, None, :] * visible).cumsum(-1)
    total = running[..., -1:].clamp_min(1e-30)
    share_at_or_above = running / total
    tt = t.to(logit.dtype)[:, None, None]
    keep_sorted = visible & (running <= tt * (1 + 1e-6) * total)
    keep_sorted = keep_sorted | (tt >= 1.0) & visible
    index = order[:, None, :].expand(b, n, n)
    hard = torch.zeros_like(keep_sorted).scatter(-1, index, keep_sorted)
    # each query's top key (the prefix maximum; ties to the later key, as the rank order has them)
    top = torch.cummax(logit.detach(), dim=-1).indices
    hard.scatter_(-1, top[..., None], True)
    hard = (hard | always) & causal
    # relax on the share strictly above a key: raising a key's own score then always raises its
    # chance to be kept (on "at or above", its own share would count against it)
    soft_sorted = torch.sigmoid((tt - (share_at_or_above - sorted_e[:, None, :] / total)) / tau)
    soft = torch.zeros_like(soft_sorted).scatter(-1, index, soft_sorted)
    soft = torch.where(always, torch.ones_like(soft), soft) * causal
    weights = hard.float() + (soft - soft.detach())
    return weights, hard


def per_query_key_weights(
    logit: torch.Tensor, t: torch.Tensor, sink: bool, recent: int, tau: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`causal_key_weights` for per-query logits (B, n, n) (row i: query i's view of keys
    0..i): -> (weights, hard mask, scores), each (B, n, n). scores: exp(logit - the row's
    maximum) on visible keys, 0 above the diagonal; the hard mask is exactly
    `CausalRanking(scores).mask(t, sink, recent)`'s (the same arithmetic), so the Text page's
    keep rule on these scores reproduces the pass.
    """
    n = logit.shape[-1]
    causal = _causal(n, logit.device)
    e = _visible_exp(logit)  # (B, q, k), 0 where invisible
    s = e.detach().masked_fill(~causal, -1.0)
    order = n - 1 - torch.sort(s.flip(-1), dim=-1, descending=True, stable=True).indices
    running = torch.gather(s, -1, order).clamp_min_(0).cumsum_(-1)
    total = running[..., -1:].clone()
    at_or_above = torch.empty_like(running).scatter_(-1, order, running)
    tt = t.to(logit.dtype)[:, None, None]
    keep = (at_or_above <= tt * total * (1 + 1e-6)) | (total <= 0) | (tt >= 1.0)
    keep.scatter_(-1, order[..., :1], True)  # each query's top key
    keep = (keep | always_kept(n, sink, recent, logit.device)) & causal
    if tau is None:
        return keep.float(), keep, e.detach()
    # relax on the share strictly above a key (see causal_key_weights), with gradients through
    # every key's mass
    e_sorted = torch.gather(e, -1, order)
    running_g = e_sorted.cumsum(-1)
    above = (running_g - e_sorted) / running_g[..., -1:].clamp_min(1e-30)
    soft = torch.empty_like(above).scatter(-1, order, torch.sigmoid((tt - above) / tau))
    soft = torch.where(always_kept(n, sink, recent, logit.device), torch.ones_like(soft), soft) * causal
    return keep.float() + (soft - soft.detach()), keep, e.detach()


@lru_cache(maxsize=8)
def _causal(n: int, device: torch.device) -> torch.Tensor:
    """(n, n) lower-triangular mask; the same for every layer and threshold (read-only)."""
    q = torch.arange(n, device=device)
    return q[:, None] >= q[None, :]


def per_query_budget_weights(
    logit: torch.Tensor,
    fractions: torch.Tensor,
    sink: bool,
    recent: int,
    tau: float | None,
    recent_share: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`per_query_key_weights` under a fixed budget: per-query logits (B, n, n) and one kept
    fraction per batch row (B,) -> (weights, hard mask, scores). The hard mask is
    `budget_keep_mask`'s: query i keeps its `budget_counts` top keys (its own key, the sink and
    the recent window first; with `recent_share`, also that share of the budget beyond itself and
    the sink in its most recent keys, as H2O splits its budget). With tau, the weights are the hard
    mask forward and sigmoid((logit - boundary) / (tau * spread)) backward (straight-through
    top-k), the boundary halfway between the lowest kept and the highest dropped logit of the query
    and the spread the standard deviation of its visible logits (so tau does not depend on their
    scale).
    """
    n = logit.shape[-1]
    d = logit.detach()
    base = always_kept(n, sink, recent, logit.device)
    always = torch.stack(
        [
            base | recent_budget_window(n, float(f), sink, recent_share, logit.device)
            for f in fractions.tolist()
        ]
    )
    hard = torch.stack(
        [budget_keep_mask(d[b], float(f), always[b]) for b, f in enumerate(fractions.tolist())]
    )
    e = _visible_exp(d)
    if tau is None:
        return hard.float(), hard, e
    causal = _causal(n, logit.device)
    scored = causal & ~always  # the keys the budget ranks by logit
    big = torch.finfo(d.dtype).max / 4  # no kept (or dropped) scored key: the relaxation saturates
    lowest_kept = torch.where(hard & scored, d, big).amin(-1, keepdim=True).clamp(-big, big)
    highest_dropped = torch.where(~hard & scored, d, -big).amax(-1, keepdim=True).clamp(-big, big)
    boundary = lowest_kept / 2 + highest_dropped / 2
    visible = d.masked_fill(~scored, 0.0)
    count = scored.sum(-1, keepdim=True).clamp_min(1)
    mean = visible.sum(-1, keepdim=True) / count
    spread = ((visible - mean).masked_fill(~scored, 0.0).square().sum(-1, keepdim=True) / count).sqrt()
    soft = torch.sigmoid((logit - boundary) / (tau * spread.clamp_min(1e-3)))
    soft = torch.where(always, torch.ones_like(soft), soft) * causal
    return hard.float() + (soft - soft.detach()), hard, e


def recent_budget_window(n: int, fraction: float, sink: bool, share: float, device=None) -> torch.Tensor:
    """(n, n) bool: under kept fraction `fraction`, each query's `share` of its budget beyond itself
    and the sink, in its most recent predecessors (H2O's recent half when share = 0.5)."""
    if share <= 0:
        return torch.zeros(n, n, dtype=torch.bool, device=device)
    size = torch.ceil(budget_beyond(n, fraction, sink, device) * share - 1e-9).long()
    return recent_window(n, size, device)


def _visible_exp(logit: torch.Tensor) -> torch.Tensor:
    """exp(logit - the row's maximum) over each query's visible keys of per-query logits
    (..., n, n), 0 above the diagonal: the scores whose shares the keep rule reads."""
    n = logit.shape[-1]
    masked = logit.masked_fill(~_causal(n, logit.device), float("-inf"))
    return (masked - masked.detach().amax(-1, keepdim=True)).exp()


def _hard_keep(logit, t, order, sorted_e, always, causal) -> torch.Tensor:
    """The hard mask of `causal_key_weights` with fewer n x n passes (it runs once per layer on
    every threshold move): the kept keys of query i are a prefix of its visible keys in rank
    order, so one count per query and a rank comparison replace the scatter back from rank order.
    The same comparison as the training path, so the same mask (tested)."""
    b, n = logit.shape
    arange = torch.arange(n, device=logit.device)
    visible = order[:, None, :] <= arange[None, :, None]  # (B, q, rank)
    running = torch.where(visible, sorted_e[:, None, :], 0.0).cumsum_(-1)  # mass ranked at or above
    tt = t.to(logit.dtype)[:, None, None]
    # ranks up to the last one whose share is still within t; invisible ranks in between add
    # nothing and are removed by causality below
    limit = tt * (1 + 1e-6) * running[..., -1:].clamp_min(1e-30)
    # running is non-decreasing along the ranks: a binary search counts the ranks within the limit
    last = torch.searchsorted(running, limit.expand(-1, n, 1).contiguous(), right=True) - 1  # (B, q, 1)
    last = torch.where(tt[..., 0:1].expand_as(last) >= 1.0, torch.full_like(last, n - 1), last)
    rank = torch.empty_like(order).scatter_(-1, order, arange.expand(b, n))  # rank of each position
    hard = rank[:, None, :] <= last
    # each query's top key (the prefix maximum; ties to the later key, as the rank order has them)
    top = torch.cummax(logit.detach(), dim=-1).indices
    hard.scatter_(-1, top[..., None], True)
    return (hard | always) & causal


def tef_checkpoint_lm(path: Path) -> Path:
    """The LM a TEF checkpoint runs on: itself for the paper variant (it is a fine-tuned LM),
    the base checkpoint beside it for the causal one."""
    heads = json.loads((path / TEF_CONFIG).read_text()) if (path / TEF_CONFIG).is_file() else None
    if heads is None:
        raise CheckpointError(f"{path.name!r} has no {TEF_CONFIG}: not a TEF checkpoint")
    if heads.get("variant") == "paper":
        return path
    base = path.parent / str(heads.get("base", ""))
    if not heads.get("base") or not base.is_dir():
        raise CheckpointError(
            f"TEF checkpoint {path.name!r} needs its base LM {heads.get('base')!r} "
            "beside it in the checkpoints directory"
        )
    return base
