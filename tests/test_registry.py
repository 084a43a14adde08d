"""One Registry type for every family, and a new method of each family reaching its page through
the registry alone (its own class, registered; no page, table or command edited)."""

from __future__ import annotations

import pytest
import torch

from tefviz.attention.approx import APPROXIMATIONS, Approximation, ApproxOutput, exact_attention
from tefviz.attention.patterns import PATTERNS, Param, Pattern, PatternKind
from tefviz.embeddings.compressors import COMPRESSORS, Compressor
from tefviz.embeddings.compressors.quantised import QuantisedEmbedding
from tefviz.errors import InputError
from tefviz.registry import Registry
from tefviz.text.scorers import SCORERS, TokenScorer, TokenScores, baseline_names

from .conftest import open_page


def test_registry_orders_finds_and_refuses():
    reg: Registry = Registry("widget")

    @reg.register
    class B:
        name, order = "b", 2

    @reg.register
    class A:
        name, order = "a", 1

    @reg.register
    class C:
        name = "c"  # no order: after the ordered ones

    assert list(reg) == ["a", "b", "c"] and reg.names(where=lambda c: c.name != "b") == ["a", "c"]
    assert reg["a"] is A and "b" in reg and len(reg) == 3 and reg.load("c").name == "c"
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(A)
    with pytest.raises(InputError, match=r"unknown widget 'd'; choose one of \['a', 'b', 'c'\]"):
        reg.get_class("d")
    with pytest.raises(TypeError, match="name"):
        reg.register(type("NoName", (), {}))
    reg.unregister("c")
    assert list(reg) == ["a", "b"]


@pytest.fixture()
def registered():
    """Register classes for one test and take them out again afterwards."""
    added: list[tuple[Registry, str]] = []

    def add(registry: Registry, cls):
        registry.register(cls)
        added.append((registry, cls.name))
        return cls

    yield add
    for registry, name in added:
        registry.unregister(name)


class FirstTokensScorer(TokenScorer):
    name = "test_first_tokens"
    label = "Test: earlier tokens first"
    description = "A test scorer: earlier tokens score higher."
    order = 5

    def score(self, model, ids, progress=None) -> TokenScores:
        n = ids.numel()
        return TokenScores(torch.arange(n, 0, -1, dtype=torch.float32)[None])


def test_a_new_scorer_reaches_the_text_page(checkpoints_root, registered):
    registered(SCORERS, FirstTokensScorer)
    assert "test_first_tokens" in baseline_names()
    at = open_page("pages/text.py", scorer="test_first_tokens")
    assert not at.exception
    box = at.selectbox(key="text.scorer")
    assert box.value == "test_first_tokens" and "Test: earlier tokens first" in box.options
    assert "earlier tokens score higher" in " ".join(c.value for c in at.caption)


class EveryOtherKind(PatternKind):
    name = "test_every_other"
    label = "Test: every other key"
    definition = "(q - k) % step == 0"
    params = (
        Param("step", 2, 1, 64, "step: distance between kept keys"),
        Param("past_only", 1, 0, 1, "look back only", kind="bool"),
    )

    def build(self, n: int, step: int, past_only: int) -> Pattern:
        def mask_mod(b, h, q, k):
            allowed = (q - k) % step == 0
            return allowed & (k <= q) if past_only else allowed

        return Pattern(
            self.name,
            {"step": step, "past_only": past_only},
            mask_mod,
            f"(q - k) % {step} == 0" + (" and k <= q" if past_only else ""),
        )


def test_a_new_pattern_reaches_the_attention_page(checkpoints_root, registered):
    registered(PATTERNS, EveryOtherKind)
    at = open_page("pages/attention.py", pattern="test_every_other")
    assert not at.exception
    assert at.selectbox(key="attention.pattern").value == "test_every_other"
    # its parameters became widgets by their kind: a number and a checkbox
    assert at.number_input(key="attention.a_test_every_other_step").value == 2
    at.checkbox(key="attention.a_test_every_other_past_only").uncheck().run()
    assert not at.exception
    assert at.query_params["a_test_every_other_past_only"] == "False"


class ExactAgain(Approximation):
    name = "test_exact_again"
    label = "Test: exact attention again"
    size_name = "s"
    size_param = "size"
    size_help = "an ignored size"
    order = 50

    def __init__(self, size: int = 8) -> None:
        self.size = size

    def __call__(self, q, k, v, causal=False, need_matrix=False) -> ApproxOutput:
        exact = exact_attention(q, k, v, causal=causal)
        return ApproxOutput(exact.out, exact.matrix if need_matrix else None)


def test_a_new_approximation_reaches_the_efficient_attention_page(checkpoints_root, registered):
    registered(APPROXIMATIONS, ExactAgain)
    at = open_page("pages/efficient_attention.py", method="test_exact_again", size="16")
    assert not at.exception
    assert at.selectbox(key="efficient_attention.method").value == "test_exact_again"
    assert (
        "Test: exact attention again" in at.checkbox(key="efficient_attention.causal").label
    )  # it is causal-capable
    errors = [m.value for m in at.metric if "error" in m.label.lower()]
    assert errors and all(float(e) < 1e-5 for e in errors)  # exact again: no error


class HalfPrecisionRows(Compressor):
    name = "test_eight_bit_rows"
    label = "Test: 8-bit rows"
    knobs = (Param("bits", 8, 8, 8, "fixed at 8"),)
    pareto_grid = ({"bits": 8},)
    order = 50

    def compress(self, weight, priority=None, *, bits):
        return QuantisedEmbedding(weight, torch.full((weight.shape[0],), bits, dtype=torch.long))


def test_a_new_compressor_reaches_the_embeddings_page(checkpoints_root, registered):
    registered(COMPRESSORS, HalfPrecisionRows)
    at = open_page("pages/embeddings.py", method="test_eight_bit_rows")
    assert not at.exception
    assert at.selectbox(key="embeddings.method").value == "test_eight_bit_rows"
    assert any("Test: 8-bit rows" in str(o) for o in at.selectbox(key="embeddings.method").options)
