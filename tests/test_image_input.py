"""Uploaded pictures -> model input: every image is built in memory with PIL, no files, no network."""

from __future__ import annotations

import io
import socket
import time
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tefviz.errors import InputError
from tefviz.images.preprocess import (
    CONTENT_SIZE,
    MODEL_SIZE,
    Conversion,
    decode_image,
    fashion_style,
    natural_photo,
    natural_photo_names,
    to_model_input,
)


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _check(x: np.ndarray, conv: Conversion) -> None:
    """The model-input contract: (32, 32) float32 in [0, 1], finite, 2-pixel border of zeros."""
    assert isinstance(conv, Conversion)
    assert x.shape == (MODEL_SIZE, MODEL_SIZE)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert x.min() >= 0.0 and x.max() <= 1.0
    pad = (MODEL_SIZE - CONTENT_SIZE) // 2
    border = np.ones(x.shape, bool)
    border[pad:-pad, pad:-pad] = False
    assert not x[border].any(), "the 2-pixel padding must stay black"


def _bright_centre(x: np.ndarray) -> tuple[float, float]:
    """(row, col) centroid of the bright (> 0.5) pixels."""
    rows, cols = np.nonzero(x > 0.5)
    assert rows.size, "no bright region"
    return float(rows.mean()), float(cols.mean())


def _convert_bytes(data: bytes, invert: str = "auto") -> tuple[np.ndarray, Conversion]:
    x, conv = to_model_input(decode_image(data), invert)
    _check(x, conv)
    return x, conv


def _png_with_header_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims `width` x `height` (CRC fixed), i.e. a decompression bomb."""
    data = bytearray(_encode(Image.new("L", (8, 8))))
    assert data[12:16] == b"IHDR"
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def _dark_shirt_on_white(size: tuple[int, int] = (60, 40)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).rectangle([size[0] // 3, size[1] // 4, 2 * size[0] // 3, 3 * size[1] // 4], "black")
    return img


# --- decode_image: bad bytes -------------------------------------------------------------------------------


def test_empty_bytes() -> None:
    with pytest.raises(InputError, match="The file is empty"):
        decode_image(b"")


def test_too_many_bytes_names_the_limit() -> None:
    data = _encode(Image.effect_noise((64, 64), 50))
    assert len(data) > 1000
    with pytest.raises(InputError, match=r"MB") as err:
        decode_image(data, max_bytes=1000)
    assert "accepted" in str(err.value)
    assert decode_image(data).size == (64, 64)  # the default limit lets it through


def test_corrupt_png_header_with_garbage() -> None:
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8))
    with pytest.raises(InputError, match=r"could not be read as an image \(supported: PNG, JPEG"):
        decode_image(garbage)


def test_corrupt_png_data_fails_at_decode() -> None:
    data = bytearray(_encode(Image.effect_noise((64, 64), 80)))
    idat = data.index(b"IDAT")
    data[idat + 20 : idat + 200] = b"\x00" * 180  # valid header, broken compressed stream
    with pytest.raises(InputError, match="could not be read as an image"):
        decode_image(bytes(data))


@pytest.mark.parametrize("kind", ["text", "zip", "html"])
def test_not_an_image(kind: str) -> None:
    if kind == "text":
        data = b"just some words, not a picture\n" * 10
    elif kind == "html":
        data = b"<!doctype html><html><script>alert('x')</script><svg onload=alert(1)></svg></html>"
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("shirt.png", _encode(Image.new("L", (4, 4))))
        data = buf.getvalue()
    with pytest.raises(InputError, match="could not be read as an image") as err:
        decode_image(data)
    assert err.value.detail  # the raw reason is kept for the folded view


def test_decompression_bomb_is_refused_from_the_header_quickly() -> None:
    data = _png_with_header_size(20000, 20000)
    assert len(data) < 200
    before = (Image.MAX_IMAGE_PIXELS, len(warnings.filters))
    start = time.perf_counter()
    with pytest.raises(InputError, match="pixels"):
        decode_image(data)
    assert time.perf_counter() - start < 1.0
    assert (Image.MAX_IMAGE_PIXELS, len(warnings.filters)) == before  # no global PIL/warnings change


def test_pixel_limit_below_pils_own() -> None:
    # 7000x7000 = 49 Mpx: under PIL's bomb limit, over ours; refused before any pixel is decoded.
    with pytest.raises(InputError, match=r"7000x7000 pixels"):
        decode_image(_png_with_header_size(7000, 7000))
    with pytest.raises(InputError, match="pixels"):
        decode_image(_encode(Image.new("L", (100, 100))), max_pixels=5000)


def test_truncated_jpeg() -> None:
    data = _encode(Image.effect_noise((128, 128), 60).convert("RGB"), "JPEG", quality=95)
    with pytest.raises(InputError, match="could not be read as an image"):
        decode_image(data[: len(data) // 2])


def test_random_corruptions_never_leak_raw_errors() -> None:
    good = _encode(_dark_shirt_on_white())
    rng = np.random.default_rng(1)
    for _ in range(40):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), 5):
            data[pos] = int(rng.integers(0, 256))
        try:
            x, conv = to_model_input(decode_image(bytes(data)))
        except InputError:
            continue
        _check(x, conv)


# --- to_model_input: formats and modes ---------------------------------------------------------------------


def test_one_by_one_pixel() -> None:
    x, conv = _convert_bytes(_encode(Image.new("L", (1, 1), 200)))
    assert conv.original_size == (1, 1)
    assert any("1x1 pixel" in s and "almost no information" in s for s in conv.steps)
    assert conv.inverted  # one light pixel is all border
    assert np.allclose(x[2:30, 2:30], 1 - 200 / 255, atol=1e-6)


def test_tiny_image_is_upscaled() -> None:
    img = Image.new("L", (2, 3))
    img.putpixel((0, 0), 255)
    x, conv = _convert_bytes(_encode(img))
    assert any(s.startswith("upscaled 2x3 -> 19x28") for s in conv.steps)
    row, col = _bright_centre(x)
    assert row < 12 and col < 12  # the top-left pixel stays top-left


def test_sixteen_bit_greyscale_spans_the_range() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64), (64, 1)).astype(np.uint16)  # dark left, bright right
    data = _encode(Image.fromarray(ramp))
    decoded = decode_image(data)
    assert decoded.mode.startswith("I")
    x, conv = _convert_bytes(data)
    assert conv.original_mode == decoded.mode
    assert any("16-bit" in s for s in conv.steps)
    assert not conv.inverted
    assert x[16, 3] < 0.05 and x[16, 28] > 0.95
    assert 0.4 < x[2:30, 2:30].mean() < 0.6  # not all white


def test_sixteen_bit_big_endian_and_narrow_range() -> None:
    # A 12-bit camera range (0..4095) in a 16-bit image is stretched by its actual range, not clipped.
    a = np.zeros((28, 28), np.uint16)
    a[10:18, 10:18] = 4095
    img = Image.frombytes("I;16B", (28, 28), a.astype(">u2").tobytes())
    x, conv = to_model_input(img)
    _check(x, conv)
    assert x[2 + 14, 2 + 14] == pytest.approx(1.0)
    assert x[5, 5] == 0.0


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (40, 40), (0, 0, 0, 0))  # white paper
    ImageDraw.Draw(img).rectangle([5, 20, 15, 35], (0, 0, 0, 255))  # black square, bottom left
    data = _encode(img, "JPEG", quality=95)
    assert decode_image(data).mode == "CMYK"
    x, conv = _convert_bytes(data)
    assert conv.original_mode == "CMYK"
    assert "converted CMYK to greyscale" in conv.steps
    assert conv.inverted
    row, col = _bright_centre(x)
    assert row > 18 and col < 14


def test_palette_png() -> None:
    img = Image.new("P", (30, 30), 0)
    img.putpalette([0, 0, 0, 250, 250, 250] + [0] * (256 * 3 - 6))
    ImageDraw.Draw(img).rectangle([18, 2, 27, 10], 1)  # light shape, top right
    data = _encode(img)
    assert decode_image(data).mode == "P"
    x, conv = _convert_bytes(data)
    assert any("palette" in s for s in conv.steps)
    assert not conv.inverted
    row, col = _bright_centre(x)
    assert row < 12 and col > 20


def test_palette_png_with_transparency() -> None:
    img = Image.new("P", (30, 30), 0)
    img.putpalette([255, 255, 255, 20, 20, 20] + [0] * (256 * 3 - 6))
    ImageDraw.Draw(img).ellipse([5, 5, 25, 25], 1)  # dark disc on a transparent (white-coloured) field
    data = _encode(img, transparency=0)
    x, conv = _convert_bytes(data)
    assert any("transparency" in s for s in conv.steps)
    assert _bright_centre(x) == pytest.approx((15.5, 15.5), abs=1.0)
    assert x[4, 4] < 0.1


def test_rgba_transparent_background_dark_shape_becomes_bright() -> None:
    img = Image.new("RGBA", (40, 40), (255, 255, 255, 0))
    ImageDraw.Draw(img).rectangle([2, 2, 14, 14], (30, 30, 30, 255))  # opaque dark shape, top left
    x, conv = _convert_bytes(_encode(img))
    assert conv.original_mode == "RGBA"
    assert any(s.startswith("flattened transparency onto white") for s in conv.steps)
    assert conv.inverted
    row, col = _bright_centre(x)
    assert row < 10 and col < 10
    assert x[25, 25] < 0.05  # transparent area ends up black


def test_rgba_transparent_background_light_shape_stays_bright() -> None:
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle([25, 25, 38, 38], (240, 240, 240, 255))  # light shape, bottom right
    x, conv = _convert_bytes(_encode(img))
    assert "flattened transparency onto black" in conv.steps
    assert not conv.inverted
    row, col = _bright_centre(x)
    assert row > 20 and col > 20


def test_la_image() -> None:
    img = Image.new("LA", (28, 28), (255, 0))  # transparent, with white colour values underneath
    ImageDraw.Draw(img).rectangle([10, 0, 17, 27], (220, 255))  # light vertical bar (a trouser leg)
    data = _encode(img)
    assert decode_image(data).mode == "LA"
    x, conv = _convert_bytes(data)
    assert not conv.inverted
    assert x[2 + 14, 2 + 13] == pytest.approx(220 / 255, abs=0.01)
    assert x[2 + 14, 2 + 3] == 0.0


def test_animated_gif_uses_the_first_frame() -> None:
    frames = []
    for left in (0, 10, 20):
        frame = Image.new("L", (30, 30), 0)
        ImageDraw.Draw(frame).rectangle([left, 0, left + 9, 29], 255)
        frames.append(frame)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_image(buf.getvalue())
    assert decoded.n_frames == 3
    decoded.seek(2)  # the caller's position does not matter
    x, conv = to_model_input(decoded)
    _check(x, conv)
    assert "took frame 1 of 3 (animated GIF)" in conv.steps
    _, col = _bright_centre(x)
    assert col < 10  # the first frame's bar is on the left


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (40, 20), 0)
    ImageDraw.Draw(img).rectangle([0, 0, 9, 19], 255)  # bright band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    x, conv = _convert_bytes(_encode(img, "JPEG", exif=exif.tobytes()))
    assert "rotated according to the EXIF orientation" in conv.steps
    assert "resized 20x40 -> 14x28" in conv.steps
    row, _ = _bright_centre(x)
    assert row < 10  # left band, rotated clockwise, is at the top


PIL_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "I;16", "I;16B", "I", "F")


@pytest.mark.parametrize("mode", [*PIL_MODES, "YCbCr", "HSV", "LAB"])
def test_every_pil_mode_converts(mode: str) -> None:
    x, conv = to_model_input(Image.new(mode, (9, 5)))
    _check(x, conv)
    assert conv.original_mode == mode and conv.original_size == (9, 5)


# --- arrays ------------------------------------------------------------------------------------------------


def test_float_array_with_nan_and_inf() -> None:
    a = np.zeros((28, 28))
    a[5:10, 5:10] = 0.9
    a[0, 0], a[1, 1], a[2, 2] = np.nan, np.inf, -np.inf
    x, conv = to_model_input(a)
    _check(x, conv)
    assert any("replaced 3 NaN/infinite" in s for s in conv.steps)
    assert x[2 + 7, 2 + 7] == pytest.approx(0.9)
    assert x[2, 2] == 0.0


def test_float_array_outside_unit_range_is_scaled_by_its_range() -> None:
    a = np.full((28, 28), -3.0)
    a[14:, 14:] = 5.0
    x, conv = to_model_input(a)
    _check(x, conv)
    assert x[2 + 20, 2 + 20] == pytest.approx(1.0) and x[2 + 3, 2 + 3] == 0.0


def test_rgba_and_uint16_arrays() -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[5:15, 20:28] = (10, 10, 10, 255)  # opaque dark patch right, the rest transparent
    x, conv = to_model_input(rgba)
    _check(x, conv)
    assert conv.inverted and conv.original_size == (30, 20)
    assert _bright_centre(x)[1] > 20
    grey16 = np.zeros((10, 10), np.uint16)
    grey16[:, 5:] = 1000
    x, conv = to_model_input(grey16)
    _check(x, conv)
    assert x[16, 25] == pytest.approx(1.0) and x[16, 5] == 0.0


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros(10),
        np.zeros((4, 4, 5)),
        np.zeros((0, 5)),
        np.zeros((3, 0, 3)),
        np.zeros((2, 2, 2, 2)),
        np.zeros((3, 3), complex),
        np.array([["a", "b"]]),
    ],
    ids=["1d", "5-channels", "zero-rows", "zero-cols", "4d", "complex", "strings"],
)
def test_wrong_arrays(arr: np.ndarray) -> None:
    with pytest.raises(InputError):
        to_model_input(arr)


def test_not_an_image_object() -> None:
    with pytest.raises(InputError, match="Expected an image"):
        to_model_input([[0, 1], [1, 0]])  # type: ignore[arg-type]


# --- inversion ---------------------------------------------------------------------------------------------


def test_auto_inverts_a_dark_shirt_on_white() -> None:
    x, conv = to_model_input(_dark_shirt_on_white())
    _check(x, conv)
    assert conv.inverted and "inverted (light background detected)" in conv.steps
    assert _bright_centre(x) == pytest.approx((15.5, 15.5), abs=1.5)
    x_never, conv_never = to_model_input(_dark_shirt_on_white(), "never")
    assert not conv_never.inverted
    assert x_never[16, 16] < 0.05 and x_never[8, 4] > 0.95  # dark shirt, white surroundings kept


def test_fashion_mnist_is_not_inverted_and_unchanged() -> None:
    from tefviz.data.fashion_mnist import eval_subset

    images, _ = eval_subset()
    for img in images[::100]:
        x, conv = to_model_input(img)
        _check(x, conv)
        assert not conv.inverted and conv.steps == ()
        np.testing.assert_array_equal(x, fashion_style(img))
    x, conv = to_model_input(images[0], "always")
    assert conv.inverted and "inverted (invert='always')" in conv.steps
    np.testing.assert_allclose(x[2:30, 2:30], 1 - images[0] / 255, atol=1e-6)


@pytest.mark.parametrize("bad", ["yes", "", "Auto", None, True])
def test_invalid_invert_mode(bad: object) -> None:
    with pytest.raises(InputError, match="'auto', 'always' or 'never'"):
        to_model_input(np.zeros((28, 28), np.uint8), bad)  # type: ignore[arg-type]


# --- ready-made inputs -------------------------------------------------------------------------------------


def test_natural_photos_load_offline_and_convert(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("natural photos must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    names = natural_photo_names()
    assert {"astronaut", "camera", "coffee", "chelsea", "rocket", "horse"} <= set(names)
    for name in names:
        photo = natural_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim in (2, 3) and min(photo.shape[:2]) > 100
        x, conv = to_model_input(photo)
        _check(x, conv)  # the padding stays black even when the photo is inverted
        assert x.std() > 0.02, name  # real content, not a flat field


def test_unknown_natural_photo() -> None:
    with pytest.raises(InputError, match="no sample photo called 'eagle'"):
        natural_photo("eagle")  # needs a download in scikit-image 0.26, so it is not offered


def test_fashion_style() -> None:
    img = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28) % 256
    x = fashion_style(img.astype(np.uint8))
    assert x.shape == (32, 32) and x.dtype == np.float32
    assert not x[:2].any() and not x[:, -2:].any()
    assert x[2, 3] == pytest.approx(1 / 255) and x[29, 29] == pytest.approx(img[27, 27] / 255)
    with pytest.raises(InputError, match="28x28"):
        fashion_style(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError):
        fashion_style(np.full((28, 28), 300, np.int64))


def test_preview_is_the_converted_picture_not_a_clipped_one():
    """The page shows `Conversion.preview`: 16-bit range-scaled (PIL's convert("L") would clip it
    white), at most PREVIEW_SIZE on its longer side, transparency flattened."""
    from tefviz.images.preprocess import PREVIEW_SIZE

    deep = Image.fromarray(np.linspace(0, 65535, 40 * 600).reshape(40, 600).astype(np.uint16))
    _, conversion = to_model_input(deep)
    p = conversion.preview
    assert p is not None and max(p.shape) == PREVIEW_SIZE and p.shape[1] > p.shape[0]
    assert p.min() < 0.05 and p.max() > 0.95 and 0.3 < p.mean() < 0.7
    small = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    small.paste((255, 255, 255, 255), (5, 2, 15, 8))
    _, c2 = to_model_input(small)
    assert c2.preview.shape == (10, 20) and c2.preview[5, 10] > 0.9 and c2.preview[0, 0] < 0.1
