"""Performer, Linformer and the continuous memory against exact attention, where the theory says
they should agree."""

from __future__ import annotations

import math

import pytest
import torch

from tefviz.attention.approx import (
    APPROXIMATIONS,
    exact_attention,
    make_approximation,
    relative_error,
    row_kl,
)
from tefviz.attention.approx.infinity_former import RBFMemory
from tefviz.attention.approx.linformer import Linformer
from tefviz.errors import InputError


@pytest.fixture(scope="module")
def qkv():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, 128, 32, generator=g) * s for s in (0.5, 0.5, 1.0))


@pytest.mark.parametrize("causal", [False, True])
def test_performer_converges_as_features_grow(qkv, causal):
    exact = exact_attention(*qkv, causal=causal).out

    def err(m: int) -> float:
        runs = [make_approximation("performer", m, seed=s)(*qkv, causal=causal).out for s in range(3)]
        return sum(relative_error(r, exact) for r in runs) / len(runs)

    errors = [err(m) for m in (16, 128, 1024)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.15


def test_performer_causal_prefix_sums_equal_its_implied_matrix(qkv):
    p = make_approximation("performer", 64, chunk=16)
    res = p(*qkv, causal=True, need_matrix=True)
    torch.testing.assert_close(res.out, res.matrix @ qkv[2], atol=1e-4, rtol=1e-4)
    assert not res.matrix.triu(1).any()
    torch.testing.assert_close(res.matrix.sum(-1), torch.ones(2, 128))
    plain = p(*qkv, causal=False, need_matrix=True)
    torch.testing.assert_close(plain.out, plain.matrix @ qkv[2], atol=1e-4, rtol=1e-4)


def test_performer_features_are_positive_and_orthogonal():
    from tefviz.attention.approx.performer import orthogonal_gaussian

    w = orthogonal_gaussian(32, 32, torch.Generator().manual_seed(1))
    unit = w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(unit @ unit.T, torch.eye(32), atol=1e-4, rtol=0)
    pq, pk = make_approximation("performer", 48).features(torch.randn(5, 8), torch.randn(7, 8))
    assert (pq > 0).all() and (pk > 0).all()


def test_linformer_with_identity_projections_is_exact(qkv):
    lin = Linformer(k=128)
    lin.projections = lambda n, device, dtype: (torch.eye(n), torch.eye(n))
    res = lin(*qkv, need_matrix=True)
    exact = exact_attention(*qkv)
    torch.testing.assert_close(res.out, exact.out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.matrix, exact.matrix, atol=1e-6, rtol=1e-4)
    with pytest.raises(InputError, match="not causal"):
        lin(*qkv, causal=True)
    with pytest.raises(InputError, match="at most n"):
        Linformer(k=500)(*qkv)


def test_continuous_memory_reproduces_a_smooth_signal():
    mem = RBFMemory(48, ridge=1e-4)
    t = mem.positions(512)
    x = torch.stack([torch.sin(2 * math.pi * t), torch.cos(3 * math.pi * t), t**2], -1)  # (L, 3)
    b = mem.fit(x)
    back = mem.signal(b, t)
    assert relative_error(back, x) < 0.01
    # too few basis functions cannot follow it
    coarse = RBFMemory(4, ridge=1e-4)
    assert relative_error(coarse.signal(coarse.fit(x), t), x) > 0.05


def test_continuous_memory_read_is_the_integral():
    mem = RBFMemory(16)
    t = torch.linspace(-2, 3, 200_001, dtype=torch.float64)
    mu, var = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.01, dtype=torch.float64)
    dens = torch.exp(-((t - mu) ** 2) / (2 * var)) / torch.sqrt(2 * math.pi * var)
    numeric = (dens[None] * mem.psi(t)).sum(-1) * (t[1] - t[0])
    torch.testing.assert_close(mem.read(mu, var), numeric, atol=1e-4, rtol=1e-3)


def test_infinity_former_output_and_matrix_agree(qkv):
    inf = make_approximation("infinity_former", 32)
    res = inf(*qkv, need_matrix=True)
    torch.testing.assert_close(res.out, res.matrix @ qkv[2], atol=1e-3, rtol=1e-3)
    kl = row_kl(exact_attention(*qkv).matrix, res.matrix)
    assert kl.shape == (2, 128) and torch.isfinite(kl).all()
    with pytest.raises(InputError, match="N <="):
        make_approximation("infinity_former", 500)(*qkv)


def test_bad_sizes_are_refused():
    with pytest.raises(InputError):
        make_approximation("performer", 0)
    with pytest.raises(InputError):
        make_approximation("linformer", 0)
    with pytest.raises(InputError):
        make_approximation("infinity_former", 1)
    with pytest.raises(InputError, match="unknown"):
        make_approximation("nope", 4)
    assert set(APPROXIMATIONS) == {"performer", "linformer", "infinity_former"}


def test_eval_approx_reports_every_layer_and_head(tiny_lm_dir, tmp_path):
    from tefviz.cli import main

    out = tmp_path / "approx.json"
    assert (
        main(
            [
                "eval",
                "approx",
                "--lm",
                str(tiny_lm_dir),
                "--tokens",
                "24",
                "--sizes",
                "4",
                "16",
                "--seeds",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    import json

    r = json.loads(out.read_text())
    perf = r["summary"]["performer size=16 non-causal"]
    assert perf["heads"] == 4 and 0 <= perf["mean_relative_error"] < 5  # 2 layers x 2 heads
    # more random features, smaller error on average over the heads
    assert perf["mean_relative_error"] <= r["summary"]["performer size=4 non-causal"]["mean_relative_error"]
    assert {row["layer"] for row in r["rows"]} == {0, 1}
