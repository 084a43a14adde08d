"""Turn an uploaded picture (bytes, a PIL image or a numpy array) into the classifier's input.

The model sees Fashion-MNIST: a light garment on a black background, 28x28 pixels padded with 2 pixels
of zeros on each side to 32x32, float32 in [0, 1]. `to_model_input` gets any picture there and records
every step it took in a `Conversion`, so the app can say what happened to the upload.

Transparency: the transparent part of an image is the background, and the model wants a black one
with a light garment. Compositing onto black would hide a dark garment, so the background is chosen
to contrast with the visible content: dark content is flattened onto white (automatic inversion then
turns it into a light garment on black), light content onto black. Either way the opaque shape ends
up as the bright part of the model input.

No UI code here: the app calls this module, never the other way round.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tefviz.errors import InputError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MODEL_SIZE = 32
PREVIEW_SIZE = 256
CONTENT_SIZE = 28
PAD = (MODEL_SIZE - CONTENT_SIZE) // 2
INVERT_MODES = ("auto", "always", "never")
SUPPORTED = "PNG, JPEG, GIF, BMP, TIFF, WebP"
UPLOAD_TYPES = ("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp")  # file suffixes an upload may have
UPLOAD_LABEL = f"Your image ({SUPPORTED}; at most {MAX_UPLOAD_BYTES // 2**20} MB)"
# Only these decoders are tried (JPEG also opens MPO camera files): no plugin that shells out (EPS).
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# skimage.data images bundled in the scikit-image wheel (0.26): they load offline, without pooch.
# Not offered, because they need a download: eagle, brain, cells3d, kidney, lily, skin, vortex,
# human_mitosis, palisades_of_vogt, protein_transport, nickel_solidification.
_NATURAL_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "moon", "rocket")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, the weights of PIL's "L" conversion
_COLOUR_MODES = ("RGB", "RGBX", "CMYK", "YCbCr", "HSV")


@dataclass(frozen=True)
class Conversion:
    """What `to_model_input` did to a picture, in words for the user."""

    steps: tuple[str, ...]
    original_size: tuple[int, int]  # (width, height)
    original_mode: str
    inverted: bool
    # the picture as greyscale in [0, 1] after frame, orientation, mode, bit depth and transparency were
    # handled, before resizing and inversion; at most PREVIEW_SIZE on its longer side (for display)
    preview: np.ndarray | None = field(default=None, compare=False, repr=False)


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int, detail: str | None = None) -> InputError:
    dims = f" ({size[0]}x{size[1]} pixels)" if size else ""
    return InputError(
        f"The image is too large{dims}: at most {max_pixels / 1e6:g} million pixels are accepted.",
        detail=detail,
    )


def decode_image(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode uploaded bytes into a loaded PIL image, refusing empty, oversized, corrupt or bomb files.

    The pixel count is read from the header before anything is decoded; PIL's own decompression-bomb
    warning is turned into an error only inside this call (no global PIL state changes).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError("The upload is not a file.", detail=f"got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise InputError("The file is empty.")
    if size > max_bytes:
        raise InputError(f"The file is {_mb(size)}; files up to {_mb(max_bytes)} are accepted.")
    unreadable = f"The file could not be read as an image (supported: {SUPPORTED})."
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(bytes(data)), formats=_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InputError(unreadable, detail=f"header size {width}x{height}")
            if width * height > max_pixels:
                raise _too_many_pixels((width, height), max_pixels)
            image.load()
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(None, max_pixels, detail=str(exc)) from exc
        except MemoryError as exc:
            raise InputError("The image is too large to decode.", detail=repr(exc)) from exc
        except UnidentifiedImageError as exc:
            raise InputError(unreadable, detail=str(exc)) from exc
        except Exception as exc:  # PIL decoders raise OSError, SyntaxError, ValueError, struct.error ...
            raise InputError(unreadable, detail=f"{type(exc).__name__}: {exc}") from exc
    return image


# --- arrays -> float planes in [0, 1] --------------------------------------------------------------------


def _scale_values(a: np.ndarray, steps: list[str]) -> np.ndarray:
    """Values of any numeric dtype -> float32 in [0, 1]; wide types by their actual range (no clipping)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype.kind == "f":
        a = a.astype(np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            steps.append(f"replaced {int(bad.sum())} NaN/infinite value(s) with 0")
            a = np.where(bad, 0.0, a)
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        return a.astype(np.float32)
    if a.dtype.kind in "iu" and a.dtype.itemsize != 2 and lo >= 0 and hi <= 255:
        steps.append(f"read {a.dtype} values 0..255 as 8-bit")
        return a.astype(np.float32) / 255.0
    if hi == lo:
        steps.append(f"the image has the single value {lo:g} everywhere: it carries no information")
        return np.zeros(a.shape, np.float32)
    if a.dtype.kind == "f":
        label = "floating-point values"
    elif a.dtype.itemsize == 2 and a.dtype.kind == "u":
        label = "16-bit"
    else:
        label = f"{8 * a.dtype.itemsize}-bit integer values"
    steps.append(f"scaled {label} to 8-bit by the actual range {lo:g}..{hi:g}")
    return ((a - lo) / (hi - lo)).astype(np.float32)


def _scale_alpha(a: np.ndarray) -> np.ndarray:
    """An alpha channel -> float32 opacity in [0, 1] (by the dtype's nominal range, not stretched)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    f = np.nan_to_num(a.astype(np.float64), nan=1.0, posinf=1.0, neginf=0.0)
    hi = float(f.max())
    if a.dtype.kind in "iu" or hi > 1.0:
        f = f / (255.0 if hi <= 255 else 65535.0 if hi <= 65535 else hi)
    return np.clip(f, 0.0, 1.0).astype(np.float32)


def _array_planes(arr: np.ndarray, steps: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A (H, W), (H, W, 1..4) numeric array -> (greyscale float32 [0, 1], alpha float32 [0, 1] or None)."""
    if arr.dtype.kind not in "biuf":
        raise InputError(f"The array holds {arr.dtype} values; an image needs integer or real pixel values.")
    if arr.size == 0:
        raise InputError(f"The array is empty (shape {arr.shape}); an image needs at least one pixel.")
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 0
    else:
        raise InputError(
            f"An image array must have shape (height, width) or (height, width, 3 or 4), not {arr.shape}."
        )
    if channels == 0:
        return _scale_values(arr, steps), None
    has_alpha = channels in (2, 4)
    colour = arr[..., : channels - 1] if has_alpha else arr
    alpha = _scale_alpha(arr[..., -1]) if has_alpha else None
    scaled = _scale_values(colour, steps)
    if scaled.shape[2] == 3:
        steps.append("converted RGB to greyscale")
        grey = (scaled @ _LUMA).astype(np.float32)
    else:
        grey = scaled[..., 0]
    return grey, alpha


# --- PIL images -> planes ---------------------------------------------------------------------------------


def _first_frame(image: Image.Image, steps: list[str]) -> Image.Image:
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames <= 1:
        return image
    fmt = image.format or "image"
    kind = f"animated {fmt}" if fmt in ("GIF", "PNG", "WEBP") else f"multi-frame {fmt}"
    position = image.tell()
    try:
        image.seek(0)
        first = image.copy()
    finally:
        image.seek(position)
    steps.append(f"took frame 1 of {frames} ({kind})")
    return first


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


Plane = Image.Image | np.ndarray  # an "L" image (0..255) or a float32 array in [0, 1]


def _pil_planes(image: Image.Image, steps: list[str]) -> tuple[Plane, Plane | None]:
    """A PIL image of any mode -> (greyscale plane, alpha plane or None).

    With alpha, the greyscale plane is premultiplied by it (so both can be resized independently).
    Wide modes (I;16, I, F) come back as float32 arrays scaled by their actual range.
    """
    image = _first_frame(image, steps)
    if _orientation(image) in range(2, 9):
        image = ImageOps.exif_transpose(image)
        steps.append("rotated according to the EXIF orientation")
    mode = image.mode
    if mode == "P":
        target = "RGBA" if "transparency" in image.info else "RGB"
        steps.append(f"converted the palette image to {target}")
        image = image.convert(target)
    elif mode == "PA":
        steps.append("converted the palette image to RGBA")
        image = image.convert("RGBA")
    elif mode in ("L", "RGB") and "transparency" in image.info:
        image = image.convert(mode[0] + "A" if mode == "L" else "RGBA")
    mode = image.mode
    if mode == "1":
        steps.append("converted black-and-white (1-bit) to greyscale")
        return image.convert("L"), None
    if mode in ("LA", "La", "RGBA", "RGBa"):
        alpha = image.getchannel(len(image.getbands()) - 1)
        if alpha.getextrema()[0] == 255:  # fully opaque: drop the alpha channel
            if mode.startswith("RGB"):
                steps.append("converted RGB to greyscale")
            return image.convert("RGB" if mode.startswith("RGB") else "L").convert("L"), None
        if mode.startswith("RGB"):
            steps.append("converted RGB to greyscale")
            bands = image.convert("RGBa").split()
            return Image.merge("RGB", bands[:3]).convert("L"), alpha
        return image.convert("La").getchannel(0), alpha
    if mode == "L":
        return image, None
    if mode in _COLOUR_MODES:
        steps.append(f"converted {mode} to greyscale")
        rgb = image if mode in ("RGB", "CMYK", "YCbCr") else image.convert("RGB")
        return rgb.convert("L"), None
    if mode == "LAB":
        steps.append("took the lightness channel of the LAB image")
        return image.getchannel(0), None
    if mode.startswith("I") or mode == "F":
        return _scale_values(np.asarray(image), steps), None
    raise InputError(f"Images in PIL mode {mode!r} are not supported.")


# --- resize, flatten, invert, pad ------------------------------------------------------------------------


def _target_size(width: int, height: int) -> tuple[int, int]:
    longer = max(width, height)
    return (max(1, round(width * CONTENT_SIZE / longer)), max(1, round(height * CONTENT_SIZE / longer)))


def _resize(plane: Plane, size: tuple[int, int], upscale: bool, tiny: bool) -> np.ndarray:
    """One plane -> float32 array of `size` (w, h), values in [0, 1]. LANCZOS down, BILINEAR up (NEAREST
    for images at most half the target, so a few pixels stay crisp blocks instead of a blur)."""
    if isinstance(plane, np.ndarray):
        img, scale = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)), 1.0
    else:
        img, scale = plane, 1.0 / 255.0
    if img.size != size:
        if not upscale:
            resample = Image.Resampling.LANCZOS
        else:
            resample = Image.Resampling.NEAREST if tiny else Image.Resampling.BILINEAR
        img = img.resize(size, resample)
    out = np.asarray(img, dtype=np.float32) * scale
    return np.clip(out, 0.0, 1.0)


def _border_mean(a: np.ndarray) -> float:
    """Mean of the outer 2-pixel frame (the whole image when it is too small to have an inside)."""
    h, w = a.shape
    if h <= 4 or w <= 4:
        return float(a.mean())
    mask = np.ones(a.shape, bool)
    mask[2:-2, 2:-2] = False
    return float(a[mask].mean())


def _to_model_input(image: Image.Image | np.ndarray, invert: str) -> tuple[np.ndarray, Conversion]:
    steps: list[str] = []
    if isinstance(image, Image.Image):
        original_size = (int(image.size[0]), int(image.size[1]))
        original_mode = image.mode
        if original_size[0] <= 0 or original_size[1] <= 0:
            raise InputError("The image has no pixels.")
        grey, alpha = _pil_planes(image, steps)
    elif isinstance(image, np.ndarray):
        grey, alpha = _array_planes(image, steps)
        original_size = (int(image.shape[1]), int(image.shape[0]))
        original_mode = f"{image.dtype} array {tuple(image.shape)}"
        if alpha is not None and float(alpha.min()) >= 1.0:
            alpha = None
        elif alpha is not None:
            grey = grey * alpha
    else:
        raise InputError(f"Expected an image or a numpy array, not {type(image).__name__}.")

    width, height = (grey.shape[1], grey.shape[0]) if isinstance(grey, np.ndarray) else grey.size
    size = _target_size(width, height)
    upscale = max(width, height) < CONTENT_SIZE
    tiny = max(width, height) * 2 <= CONTENT_SIZE
    if width * height == 1:
        steps.append("the image is 1x1 pixel: it carries almost no information")

    small = _resize(grey, size, upscale, tiny)
    if alpha is not None:
        # `small` is premultiplied colour: composite onto a background that contrasts with the visible
        # content (see the module docstring), at the small size since resizing is linear.
        small_a = _resize(alpha, size, upscale, tiny)
        weight = float(small_a.sum())
        if weight <= 1e-6:
            steps.append("the image is fully transparent: it carries no information")
            background = 0.0
        else:
            background = 1.0 if float(small.sum()) / weight < 0.5 else 0.0
        name = "white (the visible content is dark)" if background else "black"
        steps.append(f"flattened transparency onto {name}")
        small = np.clip(small + background * (1.0 - small_a), 0.0, 1.0)

    longer = max(width, height)
    preview_size = (
        (width, height)
        if longer <= PREVIEW_SIZE
        else (max(1, round(width * PREVIEW_SIZE / longer)), max(1, round(height * PREVIEW_SIZE / longer)))
    )
    preview = _resize(grey, preview_size, upscale=False, tiny=False)
    if alpha is not None:
        preview_a = _resize(alpha, preview_size, upscale=False, tiny=False)
        preview = np.clip(preview + background * (1.0 - preview_a), 0.0, 1.0)

    if size != (width, height):
        verb = "upscaled" if upscale else "resized"
        steps.append(f"{verb} {width}x{height} -> {size[0]}x{size[1]}")

    if invert == "auto":
        inverted = _border_mean(small) > 0.5
        reason = "inverted (light background detected)"
    else:
        inverted = invert == "always"
        reason = "inverted (invert='always')"
    if inverted:
        small = 1.0 - small
        steps.append(reason)

    out = np.zeros((MODEL_SIZE, MODEL_SIZE), np.float32)
    top = PAD + (CONTENT_SIZE - size[1]) // 2
    left = PAD + (CONTENT_SIZE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    out = np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    preview = np.nan_to_num(preview, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)
    return out, Conversion(tuple(steps), original_size, original_mode, inverted, preview)


def to_model_input(image: Image.Image | np.ndarray, invert: str = "auto") -> tuple[np.ndarray, Conversion]:
    """Any picture -> ((32, 32) float32 in [0, 1], light garment on black, content in the central 28x28,
    the steps taken). `invert`: "auto" (invert when the border is light), "always" or "never"."""
    if invert not in INVERT_MODES:
        raise InputError(f"Inversion must be 'auto', 'always' or 'never', not {invert!r}.")
    try:
        return _to_model_input(image, invert)
    except InputError:
        raise
    except MemoryError as exc:
        raise InputError("The image is too large to convert.", detail=repr(exc)) from exc
    except Exception as exc:
        raise InputError(
            "The image could not be converted for the model.", detail=f"{type(exc).__name__}: {exc}"
        ) from exc


# --- ready-made inputs -----------------------------------------------------------------------------------


def picture_input(
    data: bytes | None, photo: str | None = None, invert: str = "auto"
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """(model input, conversion steps, greyscale preview) of uploaded bytes, or else of the named
    natural photo."""
    picture = decode_image(data) if data is not None else natural_photo(photo)
    image, conversion = to_model_input(picture, invert)
    return image, conversion.steps, conversion.preview


def natural_photo_names() -> list[str]:
    """Names of the scikit-image sample photos that load offline (bundled with scikit-image)."""
    return list(_NATURAL_PHOTOS)


def natural_photo(name: str) -> np.ndarray:
    """The scikit-image sample image `name` as a uint8 array ((H, W) or (H, W, 3))."""
    if name not in _NATURAL_PHOTOS:
        choices = ", ".join(_NATURAL_PHOTOS)
        raise InputError(f"There is no sample photo called {name!r}; choose one of {choices}.")
    try:
        import skimage.data

        loaded: Any = getattr(skimage.data, name)()
    except Exception as exc:
        raise InputError(f"The sample photo {name!r} could not be loaded.", detail=repr(exc)) from exc
    arr = np.asarray(loaded)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        return (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return arr


def fashion_style(image: np.ndarray) -> np.ndarray:
    """A 28x28 Fashion-MNIST image (uint8 0..255, or float in [0, 1]) -> the (32, 32) float32 model input:
    scaled to [0, 1] and padded with 2 pixels of zeros on each side. Nothing else is changed."""
    arr = np.asarray(image)
    if arr.shape != (CONTENT_SIZE, CONTENT_SIZE):
        raise InputError(f"A Fashion-MNIST image is 28x28 pixels, not shape {arr.shape}.")
    if arr.dtype == np.uint8:
        scaled = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "f" and np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1:
        scaled = arr.astype(np.float32)
    else:
        raise InputError("A Fashion-MNIST image holds 8-bit values (0..255) or floats in [0, 1].")
    return np.pad(scaled, PAD).astype(np.float32)
