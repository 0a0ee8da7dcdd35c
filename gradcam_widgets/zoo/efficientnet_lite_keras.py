"""EfficientNet-Lite0 as a Keras 3 functional model (channels last).

The same network as :mod:`.efficientnet_lite_torch`, layer for layer, with the weights of
the PyTorch state dict converted at load time. Keras layer names follow the PyTorch
module names (``blocks.3.depthwise.conv``, ``head.bn``, ...), and the last layer of each
group carries the group's name, so ``stem``, ``blocks.0`` ... ``blocks.15`` and ``head``
name the same feature maps in both frameworks:

- ``stem`` and ``head`` are their ReLU6 layers;
- ``blocks.N`` is the block's residual ``Add``, or, in a block without a residual
  connection, its projection BatchNorm (``blocks.N.project.bn`` in PyTorch).

Stride-2 convolutions get an explicit ``ZeroPadding2D`` (one more pixel at the bottom and
right for 3x3 kernels, ``(1, 2)`` for 5x5), as TensorFlow's "same" padding does; stride-1
convolutions use ``padding="same"``, which is symmetric for odd kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
from keras import layers

from .efficientnet_lite import (
    BN_EPSILON,
    DROPOUT,
    HEAD_CHANNELS,
    INPUT_SIZE,
    NUM_CLASSES,
    STEM_CHANNELS,
    block_configs,
    same_padding,
)

_CHANNELS_LAST = "channels_last"


class _Builder:
    """Creates the layers and remembers which PyTorch module each one mirrors."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def conv_bn(
        self,
        x: keras.KerasTensor,
        prefix: str,
        filters: int,
        kernel: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        activation: bool = True,
        output_name: str | None = None,
    ) -> keras.KerasTensor:
        """Convolution, BatchNorm and optionally ReLU6, named ``{prefix}.conv`` etc.

        ``output_name``, if given, replaces the name of the last layer (the one whose
        output the group returns).
        """
        if stride == 1:
            padding = "same"
        else:
            before, after = same_padding(kernel, stride)
            x = layers.ZeroPadding2D(
                ((before, after), (before, after)),
                data_format=_CHANNELS_LAST,
                name=f"{prefix}.pad",
            )(x)
            padding = "valid"
        if depthwise:
            conv = layers.DepthwiseConv2D(
                kernel,
                strides=stride,
                padding=padding,
                use_bias=False,
                data_format=_CHANNELS_LAST,
                name=f"{prefix}.conv",
            )
        else:
            conv = layers.Conv2D(
                filters,
                kernel,
                strides=stride,
                padding=padding,
                use_bias=False,
                data_format=_CHANNELS_LAST,
                name=f"{prefix}.conv",
            )
        self.sources[conv.name] = f"{prefix}.conv"
        x = conv(x)
        bn_name = output_name if output_name and not activation else f"{prefix}.bn"
        bn = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=bn_name)
        self.sources[bn.name] = f"{prefix}.bn"
        x = bn(x)
        if activation:
            act_name = output_name or f"{prefix}.act"
            x = layers.ReLU(max_value=6.0, name=act_name)(x)
        return x


def build(input_size: int = INPUT_SIZE) -> tuple[keras.Model, dict[str, str]]:
    """Build EfficientNet-Lite0 in Keras with untrained weights.

    Args:
        input_size: Side of the square input; a multiple of 32 keeps the padding exact.

    Returns:
        The model, taking ``(N, input_size, input_size, 3)`` and returning ``(N, 1000)``
        logits, and a map from each weighted layer's name to the PyTorch module whose
        weights it takes.
    """
    b = _Builder()
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = b.conv_bn(inputs, "stem", STEM_CHANNELS, kernel=3, stride=2, output_name="stem")
    for i, config in enumerate(block_configs()):
        name = f"blocks.{i}"
        block_input = x
        if config.expand != 1:
            x = b.conv_bn(x, f"{name}.expand", config.hidden_channels)
        x = b.conv_bn(
            x,
            f"{name}.depthwise",
            config.hidden_channels,
            config.kernel,
            config.stride,
            depthwise=True,
        )
        x = b.conv_bn(
            x,
            f"{name}.project",
            config.out_channels,
            activation=False,
            output_name=None if config.residual else name,
        )
        if config.residual:
            x = layers.Add(name=name)([x, block_input])
    x = b.conv_bn(x, "head", HEAD_CHANNELS, output_name="head")
    x = layers.GlobalAveragePooling2D(data_format=_CHANNELS_LAST, name="pool")(x)
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    classifier = layers.Dense(NUM_CLASSES, name="classifier")
    b.sources[classifier.name] = "classifier"
    outputs = classifier(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0"), b.sources


def _convert(layer: keras.Layer, weights: Mapping[str, np.ndarray], module: str) -> list:
    """The Keras weights of ``layer`` from the PyTorch weights of ``module``."""
    if isinstance(layer, layers.DepthwiseConv2D):
        # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [weights[f"{module}.weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, layers.Conv2D):
        # (out, in, kh, kw) -> (kh, kw, in, out)
        return [weights[f"{module}.weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, layers.BatchNormalization):
        # Keras order: gamma, beta, moving mean, moving variance
        return [weights[f"{module}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, layers.Dense):
        # (out, in) -> (in, out)
        return [weights[f"{module}.weight"].T, weights[f"{module}.bias"]]
    raise TypeError(f"no weight conversion for {type(layer).__name__} {layer.name!r}")


def set_torch_weights(
    model: keras.Model, sources: Mapping[str, str], weights: Mapping[str, np.ndarray]
) -> None:
    """Copy PyTorch weights into the Keras model, converting the layouts.

    Args:
        model: A model from :func:`build`.
        sources: The layer-to-module map :func:`build` returned.
        weights: The PyTorch state dict as numpy arrays, keyed by this package's module
            names (see :func:`.efficientnet_lite.state_dict`).

    Raises:
        ValueError: If a shape does not match, or a weight is left unused.
    """
    used: set[str] = set()
    for layer_name, module in sources.items():
        layer = model.get_layer(layer_name)
        new = _convert(layer, weights, module)
        for old, value in zip(layer.get_weights(), new, strict=True):
            if old.shape != value.shape:
                raise ValueError(
                    f"{layer_name}: Keras expects {old.shape}, converted {value.shape}"
                )
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in new])
        used.update(k for k in weights if k.rsplit(".", 1)[0] == module)
    unused = sorted(set(weights) - used)
    if unused:
        raise ValueError(f"PyTorch weights without a Keras layer: {unused[:5]}")
