"""EfficientNet-Lite0 as a readable ``torch.nn.Module``.

Module names (what ``model.named_modules()`` lists and Grad-CAM's ``layer`` takes)::

    stem                        pad, conv, bn, act           (N, 32, 112, 112)
    blocks.0 ... blocks.15      expand, depthwise, project   (N, 16, 112, 112) ... (N, 320, 7, 7)
    head                        conv, bn, act                (N, 1280, 7, 7)
    pool, flatten, dropout, classifier                       (N, 1000) logits

Every module runs once per forward pass and nothing is done in place, so a hook on any
module sees exactly that module's output. See :mod:`.efficientnet_lite` for the design.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .efficientnet_lite import (
    BN_EPSILON,
    DROPOUT,
    HEAD_CHANNELS,
    NUM_CLASSES,
    STEM_CHANNELS,
    BlockConfig,
    block_configs,
    same_padding,
)


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int = 1,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """Convolution (no bias), BatchNorm and optionally ReLU6, with TF "same" padding.

    Stride-2 convolutions get an explicit, asymmetric ``pad`` module (TensorFlow pads
    the extra pixel at the bottom and right); stride-1 ones pad symmetrically.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel: Kernel side.
        stride: 1 or 2.
        groups: ``in_channels`` for a depthwise convolution, else 1.
        activation: Whether to end with ReLU6.

    Returns:
        ``nn.Sequential`` with children named ``pad`` (stride 2 only), ``conv``, ``bn``
        and ``act`` (if ``activation``).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if stride == 1:
        padding = kernel // 2
    else:
        before, after = same_padding(kernel, stride)
        layers["pad"] = nn.ZeroPad2d((before, after, before, after))
        padding = 0
    layers["conv"] = nn.Conv2d(
        in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False
    )
    layers["bn"] = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)
    if activation:
        layers["act"] = nn.ReLU6()
    return nn.Sequential(layers)


class MBConvBlock(nn.Module):
    """Inverted residual block: expand (1x1), depthwise (k x k), project (1x1), add.

    Args:
        config: Channels, kernel, stride and expansion ratio of the block.
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        hidden = config.hidden_channels
        self.residual = config.residual
        self.expand = conv_bn(config.in_channels, hidden) if config.expand != 1 else None
        self.depthwise = conv_bn(hidden, hidden, config.kernel, config.stride, groups=hidden)
        self.project = conv_bn(hidden, config.out_channels, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block on ``(N, C, H, W)`` features."""
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0: stem, 16 MBConv blocks, head, pooling, classifier.

    Takes ``(N, 3, H, W)`` float32 images scaled as ``(x - 127) / 128`` (224 x 224 for
    the ImageNet weights; any multiple of 32 keeps the padding TensorFlow-exact) and
    returns ``(N, 1000)`` logits (no softmax).
    """

    def __init__(self) -> None:
        super().__init__()
        configs = block_configs()
        self.stem = conv_bn(3, STEM_CHANNELS, kernel=3, stride=2)
        self.blocks = nn.Sequential(*(MBConvBlock(c) for c in configs))
        self.head = conv_bn(configs[-1].out_channels, HEAD_CHANNELS)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ImageNet logits of a batch of images."""
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(self.flatten(self.pool(x))))
