"""Image tokenizers, the classifier's token dropping, spectral helpers, checkpoints, training and
evaluation, on tiny random models (no Debian package needed)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tefviz.checkpoints import inspect_checkpoint
from tefviz.errors import CheckpointError, InputError
from tefviz.images.checkpoint import load_image_classifier, save_image_checkpoint
from tefviz.images.evaluate import (
    eval_inputs,
    evaluate_model,
    macro_f1,
    predict,
    settings_for,
    tokenize_batches,
)
from tefviz.images.model import ImageClassifier, Selection, gather_kept, input_keep_mask
from tefviz.images.spectral import (
    centred_spectrum,
    explained_variance,
    lowpass_reconstruction,
    lowpass_side_for_energy,
    oriented_svd,
    rank_for_variance,
    rank_k_reconstruction,
    square_energy_fractions,
)
from tefviz.images.tokenizers import TOKENIZERS, ImageConfig, TokenBatch
from tefviz.images.view import analyse_image, flipped, on_grid


def tiny(tokenizer: str, **kw) -> ImageClassifier:
    torch.manual_seed(0)
    cfg = ImageConfig(tokenizer=tokenizer, dim=16, depth=2, heads=2, mlp=32, conv_channels=2, **kw)
    return ImageClassifier(cfg).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    x, _ = eval_inputs()
    return x[:6]


def test_registry_holds_the_four_tokenizers():
    assert set(TOKENIZERS) == {"patch", "svd_tef", "fft", "svd_exact"}
    assert TOKENIZERS["svd_tef"].scored and TOKENIZERS["svd_exact"].scored
    assert not TOKENIZERS["patch"].scored and not TOKENIZERS["fft"].scored
    with pytest.raises(InputError, match="unknown image tokenizer"):
        ImageClassifier(ImageConfig(tokenizer="nope"))


@pytest.mark.parametrize("name", ["patch", "svd_tef", "fft", "svd_exact"])
def test_every_tokenizer_classifies(name, images):
    model = tiny(name)
    out = model(images)
    assert out.logits.shape == (6, 10) and torch.isfinite(out.logits).all()
    if name == "svd_exact":  # components that carry energy, plus CLS
        s = torch.linalg.svdvals(images[:, 0])
        expected = ((s > 1e-5 * s[:, :1]).sum(1) + 1).tolist()
        assert all(e < 33 for e in expected)  # zero padding leaves null components
    else:
        expected = [65] * 6  # the 8x8 grid, plus CLS
    assert out.n_tokens.tolist() == expected


def test_svd_tef_gates_scale_tokens_and_lie_in_0_1(images):
    model = tiny("svd_tef")
    batch = model.tokenizer(images)
    assert batch.scores is not None and ((batch.scores > 0) & (batch.scores < 1)).all()
    x = (images - 0.2601) / 0.3417
    u = model.tokenizer.branch_u(x).flatten(2).transpose(1, 2)
    v = model.tokenizer.branch_v(x).flatten(2).transpose(1, 2)
    raw = model.tokenizer.merge(torch.cat([u, v], -1))
    assert torch.allclose(batch.tokens, raw * batch.scores.unsqueeze(-1), atol=1e-6)


def test_threshold_keeps_the_top_gates_and_fewer_as_t_falls(images):
    model = tiny("svd_tef")
    counts = [int(model(images, Selection(t=t)).n_tokens.sum()) for t in (1.0, 0.9, 0.6, 0.3, 0.0)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 6 * 65 and counts[-1] == 6 * 2
    out = model(images, Selection(t=0.5))
    for b in range(6):
        kept = out.tokens.scores[b][out.keep[b]]
        dropped = out.tokens.scores[b][~out.keep[b]]
        assert kept.min() >= dropped.max()  # nothing dropped outranks anything kept
    top = model(images, Selection(top_k=5))
    assert top.n_tokens.tolist() == [6] * 6
    with pytest.raises(InputError, match="not both"):
        model(images, Selection(t=0.5, top_k=3))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        model(images, Selection(t=1.5))


def test_positions_are_added_before_dropping(images):
    """A kept token's encoder input is the same whatever else is dropped (no position shift)."""
    model = tiny("svd_tef")
    batch = model.tokenizer(images)
    x = batch.tokens + model.pos[batch.positions + 1]
    keep = input_keep_mask(batch, Selection(t=0.5))
    kept, padding, index = gather_kept(x, keep)
    for b in range(6):
        n = int(keep[b].sum())
        assert torch.equal(kept[b, :n], x[b][keep[b]]) and not padding[b, :n].any() and padding[b, n:].all()
        assert torch.equal(index[b, :n], keep[b].nonzero().squeeze(1))


def test_dropped_tokens_are_really_gone(images):
    """Dropping by the mask equals running the encoder on the kept tokens only (key padding works)."""
    model = tiny("svd_tef")
    out = model(images[:2], Selection(top_k=7))
    one = model(images[:1], Selection(top_k=7))
    assert torch.allclose(out.logits[:1], one.logits, atol=1e-5)


def test_tnt_prunes_inside_the_encoder(images):
    model = tiny("patch", tnt_layers=(0,))
    out = model(images, Selection(tnt_keep=0.25))
    assert out.n_tokens.tolist() == [65] * 6 and out.n_tokens_final.tolist() == [17] * 6
    assert out.tnt_keep.sum(1).tolist() == [16] * 6
    imp = out.tnt_importance
    assert torch.allclose(imp.sum(1), torch.ones(6), atol=1e-5)
    for b in range(6):
        assert imp[b][out.tnt_keep[b]].min() >= imp[b][~out.tnt_keep[b]].max()
    with pytest.raises(InputError, match="no TNT heads"):
        tiny("patch")(images, Selection(tnt_keep=0.5))
    with pytest.raises(InputError, match="keep rate"):
        model(images, Selection(tnt_keep=0.0))


def test_tnt_noise_only_while_training(images):
    model = tiny("patch", tnt_layers=(0,))
    model.tnt_noise = 1.0
    a, b = model(images).logits, model(images).logits
    assert torch.equal(a, b)  # eval: no noise
    model.train()
    assert not torch.allclose(model(images).logits, model(images).logits)


def test_fft_sides_and_energy(images):
    model = tiny("fft")
    assert model.tokenizer.allowed_sides() == [8, 16, 24, 32]
    assert model(images, Selection(fft_side=16)).n_tokens.tolist() == [17] * 6
    sides = model.tokenizer.sides_for(images, fft_energy=0.9)
    fractions = square_energy_fractions(images[:, 0], [8, 16, 24, 32])
    for b, s in enumerate(sides.tolist()):
        i = [8, 16, 24, 32].index(s)
        assert fractions[b, i] >= 0.9 - 1e-6 and (i == 0 or fractions[b, i - 1] < 0.9)
    out = model(images, Selection(fft_energy=0.9))
    assert out.n_tokens.tolist() == [(s // 4) ** 2 + 1 for s in sides.tolist()]
    # the central crop keeps its place on the position grid
    batch = model.tokenizer(images[:1], fft_side=8)
    assert sorted(batch.positions[0].tolist()) == [27, 28, 35, 36]
    with pytest.raises(InputError, match="one of"):
        model(images, Selection(fft_side=12))


def test_spectral_helpers_against_numpy(images):
    img = images[0, 0]
    ref = np.fft.fftshift(np.fft.fft2(img.numpy(), norm="ortho"))
    assert np.allclose(centred_spectrum(img).numpy(), ref, atol=1e-4)
    assert torch.allclose(lowpass_reconstruction(img, 32), img, atol=1e-5)
    err = [float((lowpass_reconstruction(img, s) - img).pow(2).sum()) for s in (4, 8, 16, 32)]
    assert err == sorted(err, reverse=True)
    assert torch.allclose(square_energy_fractions(img[None], [32]), torch.ones(1, 1))
    assert int(lowpass_side_for_energy(img[None], 1.0, 8)) == 32
    u, s, vh = oriented_svd(img)
    assert torch.allclose((u * s) @ vh, img, atol=1e-5)
    assert torch.allclose(rank_k_reconstruction(img, 32), img, atol=1e-5)
    ev = explained_variance(s)
    k = int(rank_for_variance(s, 0.9))
    assert ev[:k].sum() >= 0.9 - 1e-6 and ev[: k - 1].sum() < 0.9
    # Eckart-Young: the rank-k error is the energy of the dropped singular values
    r4 = rank_k_reconstruction(img, 4)
    assert abs(float((img - r4).pow(2).sum()) - float(s[4:].pow(2).sum())) < 1e-3
    with pytest.raises(InputError):
        rank_k_reconstruction(img, 0)
    with pytest.raises(InputError):
        lowpass_side_for_energy(img[None], 0.0, 8)


def _numpy_lowpass(img: np.ndarray, side: int, conjugate_pairs: bool) -> np.ndarray:
    """The reference, in numpy: the centred square of `side` (zero frequency at index size // 2
    of the shifted spectrum), optionally with each kept frequency's conjugate partner, inverted.
    Complex, so a caller can see whether the inverse is real."""
    size = img.shape[-1]
    spec = np.fft.fftshift(np.fft.fft2(img.astype(np.float64), norm="ortho"))
    lo = size // 2 - side // 2
    mask = np.zeros(spec.shape, dtype=bool)
    mask[lo : lo + side, lo : lo + side] = True
    if conjugate_pairs:  # (i, j) -> (-i mod H, -j mod W), in unshifted index space
        flat = np.fft.ifftshift(mask)
        h, w = flat.shape
        mirror = flat[np.ix_((-np.arange(h)) % h, (-np.arange(w)) % w)]
        mask = np.fft.fftshift(flat | mirror)
    return np.fft.ifft2(np.fft.ifftshift(spec * mask), norm="ortho")


@pytest.mark.parametrize("size", [32, 33, 16])
def test_lowpass_reconstruction_is_the_conjugate_closed_square_against_numpy(images, size):
    if size == 32:
        img = images[0, 0]
    else:
        img = torch.rand(size, size, generator=torch.Generator().manual_seed(size))
    for side in (2, 4, 6, 8, size - 2 + size % 2):  # even sides short of the full spectrum: the
        # square holds -side/2 but not +side/2
        got = lowpass_reconstruction(img, side).double().numpy()
        raw = _numpy_lowpass(img.numpy(), side, conjugate_pairs=False)
        sym = _numpy_lowpass(img.numpy(), side, conjugate_pairs=True)
        assert np.abs(raw.imag).max() > 1e-3  # the bare square is not Hermitian-symmetric
        assert np.abs(sym.imag).max() < 1e-9  # with the conjugate partners the inverse is real
        assert np.abs(got - sym.real).max() < 1e-6
        # the -side/2 row and column keep their full weight (taking .real of the bare square
        # would halve them)
        assert np.abs(got - raw.real).max() > 1e-4
        lo = size // 2 - side // 2
        spec_got = np.fft.fftshift(np.fft.fft2(got, norm="ortho"))
        spec_img = np.fft.fftshift(np.fft.fft2(img.double().numpy(), norm="ortho"))
        assert np.allclose(spec_got[lo, lo : lo + side], spec_img[lo, lo : lo + side], atol=1e-5)
    for side in (1, 3, 5, 7, 15):  # odd sides: the square is its own mirror
        got = lowpass_reconstruction(img, side).double().numpy()
        raw = _numpy_lowpass(img.numpy(), side, conjugate_pairs=False)
        assert np.abs(raw.imag).max() < 1e-9
        assert np.abs(got - raw.real).max() < 1e-6
    assert np.abs(lowpass_reconstruction(img, size).numpy() - img.numpy()).max() < 1e-5


def test_exact_svd_tokens_are_ordered_components(images):
    model = tiny("svd_exact")
    batch = model.tokenizer(images)
    assert torch.all(batch.scores[:, :-1] >= batch.scores[:, 1:] - 1e-7)
    assert torch.allclose(batch.scores.sum(1), torch.ones(6), atol=1e-5)
    # the same image always yields the same tokens (signs fixed)
    assert torch.allclose(model.tokenizer(images).tokens, batch.tokens)
    assert model(images, Selection(top_k=3)).n_tokens.tolist() == [4] * 6


def test_checkpoint_round_trip_and_clear_errors(tmp_path, images):
    model = tiny("svd_tef")
    save_image_checkpoint(model, tmp_path / "m", {"name": "m"})
    info = inspect_checkpoint(tmp_path / "m")
    assert info.usable and info.kind == "image"
    loaded = load_image_classifier(tmp_path / "m")
    # fp16 on disk: logits agree to fp16 precision
    assert torch.allclose(loaded(images).logits, model(images).logits, atol=2e-2)
    (tmp_path / "m" / "preprocessor_config.json").unlink()
    with pytest.raises(CheckpointError, match="preprocessor_config"):
        load_image_classifier(tmp_path / "m")
    save_image_checkpoint(model, tmp_path / "n", {"name": "n"})
    cfg = json.loads((tmp_path / "n" / "config.json").read_text())
    (tmp_path / "n" / "config.json").write_text(json.dumps({**cfg, "dim": 32}))
    with pytest.raises(CheckpointError, match="does not match"):
        load_image_classifier(tmp_path / "n")
    (tmp_path / "n" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_image_classifier(tmp_path / "n")


def test_evaluation_table_rows(images):
    x, y = eval_inputs()
    model = tiny("svd_tef")
    table = evaluate_model(model, x[:40], y[:40], progress=False)
    kinds = [r["setting"] for r in table["rows"]]
    assert kinds.count("t") == 8 and kinds.count("top_k") == 4 and kinds[0] == "all"
    tokens = [r["mean_tokens"] for r in table["rows"] if r["setting"] == "t"]
    assert tokens == sorted(tokens, reverse=True) and table["rows"][0]["mean_tokens"] == 65
    assert {s.kind for s in settings_for(tiny("fft"))} == {"all", "fft_side", "fft_energy"}
    assert {s.kind for s in settings_for(tiny("patch", tnt_layers=(0,)))} == {"all", "tnt_keep"}
    tnt = evaluate_model(tiny("patch", tnt_layers=(0,)), x[:20], y[:20], progress=False)
    half = next(r for r in tnt["rows"] if r["value"] == 0.5)
    # pruned after block 1 of 2: half the blocks see 65 tokens, half 33
    assert half["mean_tokens"] == pytest.approx((65 + 33) / 2) and half["mean_input_tokens"] == 65


def test_macro_f1():
    labels = np.array([0, 0, 1, 1])
    assert macro_f1(labels, labels, 2) == 1.0
    assert macro_f1(np.array([0, 0, 0, 0]), labels, 2) == pytest.approx((2 / 3 + 0) / 2)


def test_analyse_image_and_flips(images):
    model = tiny("svd_tef")
    img = images[0, 0].numpy()
    res = analyse_image(model, img, Selection(t=0.5))
    assert res.tokens_all == 65 and 1 < res.tokens_now < 65
    assert res.keep.sum() == res.tokens_now - 1 and res.scores.shape == (64,)
    assert np.isclose(res.probs_all.sum(), 1) and np.isclose(res.probs_now.sum(), 1)
    grid = on_grid(res.keep, res.positions, 8, False)
    assert grid.shape == (8, 8) and grid.sum() == res.keep.sum()
    same = analyse_image(model, img, Selection())
    assert np.allclose(same.probs_all, same.probs_now)
    f = flipped(np.array([0, 1, 2, 3]), np.array([0, 2, 2, 1]), np.array([0, 1, 2, 2]))
    assert f["broken"].tolist() == [1] and f["fixed"].tolist() == [] and f["still_wrong"].tolist() == [3]


def test_token_batch_validity_mask_for_mixed_fft_sides(images):
    model = tiny("fft")
    batch: TokenBatch = model.tokenizer(images, fft_energy=0.97)
    sides = model.tokenizer.sides_for(images, fft_energy=0.97)
    if len(set(sides.tolist())) > 1:
        assert batch.valid is not None
        assert batch.valid.sum(1).tolist() == [(s // 4) ** 2 for s in sides.tolist()]


def test_train_and_export_on_synthetic_data(tmp_path, monkeypatch):
    """The trainer end to end (a few steps, data stubbed), then TNT heads on the frozen result."""
    from tefviz.train import images as train_mod

    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), 60)).astype(np.uint8)
    imgs = (rng.random((600, 28, 28)) * 40).astype(np.uint8)
    for i, c in enumerate(labels):  # class c: a centred bright bar 2c + 4 wide (flips and shifts keep it)
        imgs[i, 12:16, 12 - c - 2 : 12 + c + 2] = 250
    monkeypatch.setattr(train_mod, "load_split", lambda split: (imgs, labels))
    monkeypatch.setattr(train_mod, "VALID_IMAGES", 100)
    cfg = train_mod.ImageTrainConfig(
        tokenizer="patch",
        run_dir=tmp_path / "vit",
        epochs=3,
        batch_size=50,
        dim=16,
        depth=2,
        heads=2,
        lr=3e-3,
        warmup_steps=5,
    )
    train_mod.train_images(cfg)
    run = json.loads((tmp_path / "vit" / "run.json").read_text())
    assert run["steps"] == 30 and run["valid_accuracy"] > 0.3  # learnt something from 30 steps
    tnt = train_mod.ImageTrainConfig(
        tokenizer="patch",
        run_dir=tmp_path / "tnt",
        epochs=1,
        batch_size=50,
        tnt=True,
        base=tmp_path / "vit",
        tnt_layer=0,
        lr=1e-2,
    )
    train_mod.train_images(tnt)
    card = train_mod.export_images(tmp_path / "tnt", tmp_path / "ck", command="python -m tefviz train images")
    assert card["architecture"]["tnt_layers"] == [0] and card["training"]["command"].startswith("python")
    model = load_image_classifier(tmp_path / "ck")
    base = load_image_classifier_from_run(tmp_path / "vit")
    x = torch.rand(3, 1, 32, 32)
    # the backbone stayed frozen: without pruning, the TNT model predicts as the base did
    assert torch.allclose(model(x).logits, base(x).logits, atol=2e-2)


def load_image_classifier_from_run(run_dir):
    from safetensors.torch import load_file

    model = ImageClassifier(ImageConfig.from_json(json.loads((run_dir / "config.json").read_text())))
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    return model.eval()


def test_cli_eval_and_bench_images_on_tiny_checkpoints(tiny_image_root, tmp_path):
    from tefviz.cli import main

    ck = tiny_image_root / "tefviz-image-svd-tef"
    assert (
        main(
            ["eval", "images", "--checkpoint", str(ck), "--limit", "30", "--out", str(tmp_path / "eval.json")]
        )
        == 0
    )
    table = json.loads((tmp_path / "eval.json").read_text())["tefviz-image-svd-tef"]
    assert table["images"] == 30 and len(table["rows"]) == 13
    assert (
        main(
            [
                "bench",
                "images",
                "--checkpoint",
                str(ck),
                "--checkpoint",
                str(tiny_image_root / "tefviz-image-vit"),
                "--repeats",
                "1",
                "--out",
                str(tmp_path / "bench.json"),
            ]
        )
        == 0
    )
    bench = json.loads((tmp_path / "bench.json").read_text())
    vit = bench["models"]["tefviz-image-vit"]
    assert vit["reduced_mean_tokens"] == 65 and vit["rerender_reduced_ms"] > 0  # TNT prunes inside
    assert main(["eval", "images", "--checkpoint", str(tmp_path / "missing")]) == 2


def test_training_budgets():
    from tefviz.train.images import training_budget

    gen = torch.Generator().manual_seed(0)
    svd = ImageConfig(tokenizer="svd_tef")
    picks = [training_budget(svd, gen, 0.5) for _ in range(200)]
    ts = [s.t for s in picks if s.t is not None]
    assert 60 < len(ts) < 140 and min(ts) >= 0.5 and max(ts) <= 1.0
    assert all(training_budget(svd, gen) == Selection() for _ in range(20))  # the thesis: no drop
    sides = {training_budget(ImageConfig(tokenizer="fft"), gen).fft_side for _ in range(100)}
    assert sides == {8, 16, 24, 32}
    ks = {training_budget(ImageConfig(tokenizer="svd_exact"), gen).top_k for _ in range(400)}
    assert min(ks) == 1 and max(ks) == 32


def test_montage_places_images_row_by_row():
    from tefviz.images.view import montage

    imgs = np.stack([np.full((3, 4), i / 10, dtype=np.float32) for i in range(7)])
    sheet = montage(imgs, columns=3, gap=1)
    assert sheet.shape == (3 * 4 - 1, 3 * 5 - 1)
    assert sheet[0, 0] == 0.0 and sheet[0, 5] == np.float32(0.1) and sheet[4, 0] == np.float32(0.3)
    assert sheet[8, 0] == np.float32(0.6) and sheet[8, 5] == 1.0  # past the last image: gap colour


def test_tnt_keep_mask_in_a_batch_of_different_lengths(images):
    """FFT crops by energy give each image its own token count; TNT's mask must match one-by-one runs."""
    model = tiny("fft", tnt_layers=(0,))
    sel = Selection(fft_energy=0.93, tnt_keep=0.5)
    sides = model.tokenizer.sides_for(images, fft_energy=0.93)
    assert len(set(sides.tolist())) > 1  # the case that matters
    batch = model(images, sel)
    for b in range(len(images)):
        one = model(images[b : b + 1], sel)
        n = one.tnt_keep.shape[1]
        assert torch.equal(batch.tnt_keep[b, :n], one.tnt_keep[0]), b
        assert int(batch.tnt_keep[b].sum()) == int(one.n_tokens_final[0]) - 1


def test_trainer_guards(tmp_path, monkeypatch):
    from tefviz.train import images as train_mod

    imgs = np.zeros((130, 28, 28), np.uint8)
    labels = (np.arange(130) % 10).astype(np.uint8)
    monkeypatch.setattr(train_mod, "load_split", lambda split: (imgs, labels))
    monkeypatch.setattr(train_mod, "VALID_IMAGES", 100)
    # fewer training images (30) than a batch: one short batch per epoch, and it ends
    cfg = train_mod.ImageTrainConfig(
        tokenizer="patch", run_dir=tmp_path / "r", epochs=2, batch_size=64, dim=16, depth=2, heads=2
    )
    train_mod.train_images(cfg)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["steps"] == 2
    svd = train_mod.ImageTrainConfig(
        tokenizer="svd_exact", run_dir=tmp_path / "s", epochs=1, batch_size=64, dim=16, depth=2, heads=2
    )
    train_mod.train_images(svd)
    with pytest.raises(InputError, match="patch run"):
        train_mod.train_images(
            train_mod.ImageTrainConfig(tnt=True, base=tmp_path / "s", run_dir=tmp_path / "t")
        )
    with pytest.raises(InputError, match="tnt-layer"):
        train_mod.train_images(
            train_mod.ImageTrainConfig(tnt=True, base=tmp_path / "r", tnt_layer=1, run_dir=tmp_path / "t")
        )


@pytest.mark.parametrize(
    "name,settings",
    [
        ("svd_tef", [Selection(t=0.3), Selection(t=0.8), Selection(top_k=5)]),
        ("fft", [Selection(fft_side=16), Selection(fft_energy=0.9)]),
        ("patch", [Selection(), Selection(tnt_keep=0.5)]),
    ],
)
def test_tokens_made_once_serve_every_threshold(name, settings, images):
    model = tiny(name, **({"tnt_layers": (0,)} if name == "patch" else {})).eval()
    for sel in settings:
        tokenized = tokenize_batches(model, images, sel, batch=3)
        assert len(tokenized) == -(-len(images) // 3)
        want = predict(model, images, sel, batch=3)
        got = predict(model, images, sel, batch=3, tokenized=tokenized)
        for a, b in zip(want, got, strict=True):
            assert torch.equal(a, b)


def test_tokenizers_declare_budgets_settings_and_figures(images):
    """What the page, `eval images`, `bench images` and the trainer read from each tokenizer class."""
    from tefviz.images.view import main_figures

    want = {  # budget widget keys, figure keys (the probabilities last), bench's reduced setting
        "svd_tef": (["t", "k_svd_tef"], ["overlay", "scores", "cumulative", "probs"], Selection(t=0.8)),
        "fft": (["side", "p"], ["fft_input", "spectrum", "lowpass", "probs"], Selection(fft_side=16)),
        "svd_exact": (
            ["t", "k_svd_exact"],
            ["svd_input", "rank_k", "svd_cumulative", "probs"],
            Selection(t=0.9),
        ),
        "patch": (["keep"], ["overlay", "scores", "cumulative", "probs"], Selection(tnt_keep=0.5)),
    }
    assert list(TOKENIZERS) == ["svd_tef", "fft", "svd_exact", "patch"]  # display order
    for name, (keys, figures, reduced) in want.items():
        model = tiny(name, **({"tnt_layers": (0,)} if name == "patch" else {}))
        budgets = model.tokenizer.budgets(model.cfg)
        assert [b.key for b in budgets] == keys, name
        assert model.tokenizer.reduced_setting(model.cfg) == reduced
        sel = budgets[0].selection(budgets[0].default)
        res = analyse_image(model, images[0, 0].numpy(), sel)
        specs = main_figures(model, res, images[0, 0].numpy(), sel, label=3)
        assert [f.key for f in specs] == figures, name
        assert all(f.build().data for f in specs)
    assert tiny("patch").tokenizer.budgets(tiny("patch").cfg) == ()  # no scores, no TNT heads
    fft = TOKENIZERS["fft"].budgets(ImageConfig(tokenizer="fft"))
    assert fft[0].selection(16) == Selection(fft_side=16)
    assert fft[1].selection("0.9") == Selection(fft_energy=0.9)


def test_accuracy_curves_from_settings():
    from tefviz.images.evaluate import Measured, accuracy_curves

    def row(kind, value, label, tokens, acc):
        return {"setting": kind, "value": value, "label": label, "mean_tokens": tokens, "accuracy": acc}

    fft = {
        "evaluation": {
            "rows": [
                row("all", None, "all tokens", 65, 0.9),
                row("fft_side", 16, "side = 16", 17, 0.8),
                row("fft_energy", 0.9, "energy p = 0.9", 10, 0.6),
            ]
        }
    }
    vit = {"evaluation": {"rows": [row("all", None, "all tokens", 65, 0.85)]}}
    tables = [
        ("FFT low-pass", {"tokenizer": "fft"}, fft),
        ("ViT patches", {"tokenizer": "patch"}, vit),
        ("Exact SVD", {"tokenizer": "svd_exact"}, None),
    ]
    curves, current = accuracy_curves(tables, Measured("FFT low-pass", "fft_energy", 12.0, 0.7))
    assert curves["FFT low-pass · side"] == [(17, 0.8, "side = 16"), (65, 0.9, "all tokens")]
    assert curves["FFT low-pass · energy p"][-1] == (65, 0.9, "all tokens")
    assert curves["ViT patches"] == [(65, 0.85, "all tokens")]
    assert current == {"FFT low-pass · energy p": (12.0, 0.7)}
    _, current = accuracy_curves(tables, Measured("ViT patches", None, 65.0, 0.8))
    assert current == {"ViT patches": (65.0, 0.8)}
    curves, current = accuracy_curves(tables, Measured("Exact SVD", "t", 9.0, 0.5))  # no table: a lone star
    assert current == {"Exact SVD": (9.0, 0.5)} and curves["Exact SVD"] == []


def test_train_images_resumes_where_it_stopped(tmp_path, monkeypatch):
    """An interrupted run resumes from its last saved state and ends where an uninterrupted one does."""
    from safetensors.torch import load_file

    from tefviz.train import images as train_mod

    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), 30)).astype(np.uint8)
    imgs = (rng.random((300, 28, 28)) * 255).astype(np.uint8)
    monkeypatch.setattr(train_mod, "load_split", lambda split: (imgs, labels))
    monkeypatch.setattr(train_mod, "VALID_IMAGES", 100)

    def config(run_dir):
        return train_mod.ImageTrainConfig(
            tokenizer="patch",
            run_dir=run_dir,
            epochs=3,
            batch_size=40,
            dim=16,
            depth=2,
            heads=2,
            warmup_steps=3,
            save_every=5,
        )

    train_mod.train_images(config(tmp_path / "whole"))
    real_augment, calls = train_mod.augment, []

    def interrupted(x, gen):
        calls.append(1)
        if len(calls) == 8:  # step 8 of 15: the last saved state is step 5
            raise KeyboardInterrupt
        return real_augment(x, gen)

    monkeypatch.setattr(train_mod, "augment", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train_images(config(tmp_path / "split"))
    assert json.loads((tmp_path / "split" / "state" / "progress.json").read_text())["step"] == 5
    monkeypatch.setattr(train_mod, "augment", real_augment)
    train_mod.train_images(config(tmp_path / "split"))
    whole, split = (load_file(tmp_path / d / "model.safetensors") for d in ("whole", "split"))
    assert json.loads((tmp_path / "split" / "run.json").read_text())["steps"] == 15
    for k in whole:  # equal up to float noise of threaded CPU kernels
        torch.testing.assert_close(split[k], whole[k], atol=1e-3, rtol=0)
    with pytest.raises(InputError, match="different run"):  # another model in the same run directory
        train_mod.train_images(dataclasses.replace(config(tmp_path / "split"), dim=32))


def test_grey_image_bytes_decode_to_the_clipped_upscaled_picture():
    import io

    from PIL import Image

    from tefviz.images.view import grey_image_bytes

    picture = np.array([[0.0, 0.5], [1.0, 2.0]])  # 2.0: out of range, shown as white
    png = Image.open(io.BytesIO(grey_image_bytes(picture, scale=3)))
    assert png.format == "PNG" and png.size == (6, 6)
    expected = np.kron(np.array([[0, 128], [255, 255]]), np.ones((3, 3)))
    np.testing.assert_array_equal(np.asarray(png), expected)
    assert Image.open(io.BytesIO(grey_image_bytes(picture, format="JPEG"))).format == "JPEG"


def test_at_a_threshold_the_subset_is_batched_by_kept_count_and_answered_in_its_own_order(monkeypatch):
    from tefviz.images import evaluate

    model = tiny("svd_tef")
    x = eval_inputs()[0][:40]
    sel = Selection(t=0.6)
    gen = torch.Generator().manual_seed(0)  # an untrained scorer scores nearly evenly: vary the counts
    tokenized = [
        dataclasses.replace(tb, scores=torch.rand(tb.scores.shape, generator=gen) ** 4)
        for tb in tokenize_batches(model, x, sel, batch=8)
    ]
    batches, order = evaluate._by_kept_count(tokenized, sel, 8)
    counts = torch.cat([input_keep_mask(tb, sel).sum(1) for tb in batches])
    assert torch.equal(counts, counts.sort().values) and len(set(counts.tolist())) > 1  # sorted, varied
    assert sorted(order.tolist()) == list(range(40)) and order.tolist() != list(range(40))
    got = predict(model, x, sel, batch=8, tokenized=tokenized)
    monkeypatch.setattr(evaluate, "_regroupable", lambda *a: False)
    want = predict(model, x, sel, batch=8, tokenized=tokenized)  # batches in the subset's order
    torch.testing.assert_close(got[0], want[0])
    assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])
