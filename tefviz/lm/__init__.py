"""The intervention layer: how tefviz reads and changes what any supported causal LM computes."""

from tefviz.lm.forward import MaskedOutput, capture_qkv, masked_forward
from tefviz.lm.intervene import (
    DROP_MODES,
    Capture,
    DropMode,
    LayerEdit,
    LayerRecord,
    Plan,
    install,
    intervene,
)
from tefviz.lm.parts import SUPPORTED, ModelParts, model_parts

__all__ = [
    "DROP_MODES",
    "SUPPORTED",
    "Capture",
    "DropMode",
    "LayerEdit",
    "LayerRecord",
    "MaskedOutput",
    "ModelParts",
    "Plan",
    "capture_qkv",
    "install",
    "intervene",
    "masked_forward",
    "model_parts",
]
