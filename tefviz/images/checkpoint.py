"""Image classifier checkpoints: config.json (model_type tefviz-image), fp16 safetensors weights,
preprocessor_config.json (how a picture becomes the model's input) and card.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tefviz.checkpoints import validate_checkpoint
from tefviz.data.fashion_mnist import CLASSES
from tefviz.device import pick_device
from tefviz.errors import CheckpointError
from tefviz.images.model import ImageClassifier
from tefviz.images.tokenizers import ImageConfig
from tefviz.images.tokenizers.base import PIXEL_MEAN, PIXEL_STD

IMAGE_MODEL_TYPE = "tefviz-image"
WEIGHTS = "model.safetensors"


def preprocessor_config(cfg: ImageConfig) -> dict:
    return {
        "image_size": cfg.image_size,
        "content_size": cfg.image_size - 4,
        "padding": 2,
        "channels": 1,
        "background": "black (light-background images are inverted)",
        "pixel_mean": PIXEL_MEAN,
        "pixel_std": PIXEL_STD,
        "classes": list(CLASSES),
    }


def save_image_checkpoint(model: ImageClassifier, out: Path, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()
    }
    save_file(state, out / WEIGHTS)
    (out / "config.json").write_text(
        json.dumps({"model_type": IMAGE_MODEL_TYPE, **model.cfg.to_json()}, indent=1)
    )
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(model.cfg), indent=1))
    (out / "card.json").write_text(json.dumps(card, indent=1))


def load_image_classifier(path: Path, device: torch.device | str | None = None) -> ImageClassifier:
    """A checkpoint directory -> the classifier in eval mode (fp32; the models are small) on `device`
    (default: the device policy's), or CheckpointError saying why not."""
    validate_checkpoint(path)
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") != IMAGE_MODEL_TYPE:
        raise CheckpointError(
            f"checkpoint {path.name!r} is not an image classifier (model_type {config.get('model_type')!r})"
        )
    try:
        model = ImageClassifier(ImageConfig.from_json(config))
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(path / WEIGHTS).items()}
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError, FileNotFoundError) as e:
        raise CheckpointError(f"checkpoint {path.name!r} does not match its config.json", str(e)) from e
    return model.eval().to(pick_device(device))
