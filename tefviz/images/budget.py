"""What a tokenizer's token budget is made of, declared by the tokenizer itself.

- `Selection`: which tokens survive one pass (threshold t or top-k on the scores, TNT keep rate,
  the FFT crop, and any knob a new tokenizer adds under `knobs`);
- `Budget`: one control of a tokenizer's budget: its widget (range or choices, default, help),
  the values the evaluation table reports, and how a widget value becomes a `Selection`;
- `Setting`: one row of the evaluation table (a budget at one value).

No torch and no tokenizer here, so the tokenizers, the classifier, the page and the commands all
import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Selection:
    """Which tokens survive: a cumulative threshold t or top-k on the tokenizer's scores, TNT
    keep rate at the model's TNT layer, the FFT crop (side or energy share), and `knobs`:
    (name, value) pairs a tokenizer declares for its own budgets (passed to its `forward`)."""

    t: float | None = None
    top_k: int | None = None
    tnt_keep: float | None = None
    fft_side: int | None = None
    fft_energy: float | None = None
    knobs: tuple[tuple[str, Any], ...] = ()

    def __repr__(self) -> str:  # the dataclass form, `knobs` only when there are some
        shown = [f"{f}={getattr(self, f)!r}" for f in SELECTION_FIELDS]
        return f"Selection({', '.join(shown + ([f'knobs={self.knobs!r}'] if self.knobs else []))})"

    def budget(self) -> dict:
        """The keyword arguments of the tokenizer's `forward` (what the tokens depend on)."""
        return {"fft_side": self.fft_side, "fft_energy": self.fft_energy, **dict(self.knobs)}

    def tokenizer_part(self) -> Selection:
        """Only what the tokens depend on (never t, top-k or TNT): a cache key for tokenizing once
        and re-classifying at many thresholds."""
        return Selection(fft_side=self.fft_side, fft_energy=self.fft_energy, knobs=self.knobs)


SELECTION_FIELDS = tuple(f.name for f in fields(Selection) if f.name != "knobs")


@dataclass(frozen=True)
class Setting:
    """One row of the evaluation table: `kind` is the budget's field ("all" for every token)."""

    kind: str  # "all", "t", "top_k", "fft_side", "fft_energy", "tnt_keep" or a tokenizer's knob
    value: float | int | None
    selection: Selection
    name: str = "all tokens"  # the budget's short name: "t", "top-k", "side", ...

    @property
    def label(self) -> str:
        return self.name if self.value is None else f"{self.name} = {self.value:g}"


ALL_TOKENS = Setting("all", None, Selection())


@dataclass(frozen=True)
class Budget:
    """One control of a tokenizer's token budget.

    The page draws a slider over [lo, hi] (or a select slider over `choices`) under `key`, which is
    also its URL parameter; the widget value `v` becomes `selection(v)`. `table` holds the values
    `eval images` reports for it (the accuracy-vs-tokens curve of the cards)."""

    field: str  # a Selection field ("t", "top_k", ...) or a tokenizer's own knob name
    mode: str  # its option in the page's budget radio ("threshold t", "top-k", ...)
    short: str  # its name in table labels and curve names ("t", "top-k", "side", ...)
    label: str  # the widget's label
    key: str  # its name on the Images page: URL parameter <key>, session key images.<key>
    default: float | int
    lo: float | int | None = None
    hi: float | int | None = None
    step: float | int | None = None
    choices: tuple[float | int, ...] | None = None  # discrete values instead of a range
    help: str | None = None
    table: tuple[float | int, ...] = field(default=())

    def widget_args(self) -> tuple[tuple, dict]:
        """(positional, keyword) arguments of its widget after the label: the choices of a select
        slider, or the range and step of a slider."""
        if self.choices is not None:
            return (self.choices,), {}
        return (self.lo, self.hi), {"step": self.step}

    def cast(self, value: Any) -> float | int:
        """A widget or URL value in the budget's type (the default's)."""
        return type(self.default)(value)

    def selection(self, value: Any) -> Selection:
        v = self.cast(value)
        if self.field in SELECTION_FIELDS:
            return Selection(**{self.field: v})
        return Selection(knobs=((self.field, v),))

    def setting(self, value: Any) -> Setting:
        return Setting(self.field, self.cast(value), self.selection(value), self.short)

    def settings(self) -> list[Setting]:
        return [self.setting(v) for v in self.table]
