"""Online options: ``keras.applications`` ImageNet models (they download their weights).

The first call of ``zoo.load("vgg16" | "xception" | "efficientnetv2s", framework="keras")``
downloads the ImageNet weights into ``~/.keras/models`` (528 MB, 88 MB and 84 MB); later
calls read them from there. Nothing here runs unless such a model is asked for.

Each model is built with ``classifier_activation=None`` so that, like every zoo model, it
returns logits; ``ZooModel.decode`` applies the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class AppSpec:
    """How to build and feed one ``keras.applications`` model.

    Attributes:
        constructor: The function's name in ``keras.applications``.
        module: The submodule holding its ``preprocess_input``.
        input_size: Side of the square input.
        default_layer: Recommended Grad-CAM layer (the last convolutional feature map).
        layers: A short list of block outputs from early to late.
    """

    constructor: str
    module: str
    input_size: int
    default_layer: str
    layers: tuple[str, ...]


SPECS: dict[str, AppSpec] = {
    "vgg16": AppSpec(
        constructor="VGG16",
        module="vgg16",
        input_size=224,
        default_layer="block5_conv3",
        layers=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
    ),
    "xception": AppSpec(
        constructor="Xception",
        module="xception",
        input_size=299,
        default_layer="block14_sepconv2_act",
        layers=(
            "block1_conv2_act",
            "block3_sepconv2_bn",
            "block4_sepconv2_bn",
            "block8_sepconv3_bn",
            "block13_sepconv2_bn",
            "block14_sepconv1_act",
            "block14_sepconv2_act",
        ),
    ),
    "efficientnetv2s": AppSpec(
        constructor="EfficientNetV2S",
        module="efficientnet_v2",
        input_size=384,
        default_layer="top_conv",
        layers=(
            "stem_activation",
            "block1b_add",
            "block2d_add",
            "block3d_add",
            "block4f_add",
            "block5i_add",
            "block6o_add",
            "top_conv",
        ),
    ),
}


def build(name: str) -> keras.Model:
    """Build a ``keras.applications`` model with its ImageNet weights (downloads them).

    Args:
        name: A key of :data:`SPECS`.

    Returns:
        The model, returning logits.
    """
    spec = SPECS[name]
    constructor = getattr(keras.applications, spec.constructor)
    return constructor(weights="imagenet", classifier_activation=None)


def scale(name: str, batch: np.ndarray) -> np.ndarray:
    """Apply the model's own ``preprocess_input`` to an RGB batch with values 0..255.

    VGG16 converts to BGR and subtracts the ImageNet mean, Xception scales to -1..1,
    EfficientNetV2 does its scaling inside the model (its ``preprocess_input`` passes the
    values through).
    """
    module = getattr(keras.applications, SPECS[name].module)
    return np.asarray(module.preprocess_input(np.array(batch, dtype=np.float32)))
