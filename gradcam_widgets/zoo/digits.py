"""Small MNIST networks in Keras and PyTorch, and the helpers to train them.

Two architectures, each built alike in both frameworks, with the same layer names:

* a **GAP network** for CAM (lessons 01-02): three 3x3 convolutions with ReLU and two
  2x2 max-poolings, then global average pooling (GAP) and one dense layer::

      conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) -> 7x7x64 - gap - scores(10)

* the **lecture CNN** (lesson 03), the network of the GIST Grad-CAM lecture: three 3x3
  convolutions of 32, 64 and 64 filters, each followed by a 2x2 max-pooling, then a
  Flatten + Dense head; 130,890 parameters::

      conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 -> 3x3x64
      - flatten(576) - dense(128, ReLU) - scores(10)

Keras models end in ``Dense(10, activation="softmax")`` as Keras code usually does;
PyTorch models return the pre-softmax scores (logits), as PyTorch code usually does. In
PyTorch a convolution and its ReLU are one module (:class:`ConvReLU`), so that
``"conv2"`` names the same feature map (after the ReLU) in both frameworks.

Nothing here imports a framework at module level: a Keras lesson never imports torch and
a PyTorch lesson never imports TensorFlow.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import is_torch_model

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import torch

__all__ = [
    "CLASS_NAMES",
    "to_keras_input",
    "to_torch_input",
    "keras_gap_net",
    "keras_lecture_cnn",
    "train_keras",
    "torch_gap_net",
    "torch_lecture_cnn",
    "train_torch",
    "accuracy",
    "predict_classes",
    "torch_from_keras",
    "ink_share",
    "top_share",
]

#: Names of the ten classes, index ``d`` is the digit ``d``.
CLASS_NAMES: list[str] = [str(digit) for digit in range(10)]

_SIZE = 28


def _as_digits(images: np.ndarray) -> np.ndarray:
    """Check and return ``images`` as ``(N, 28, 28)``; one ``(28, 28)`` image becomes N=1."""
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim == 4 and 1 in (array.shape[1], array.shape[-1]):
        array = array.reshape(array.shape[0], _SIZE, _SIZE) if array.size else array
    if array.ndim != 3 or array.shape[1:] != (_SIZE, _SIZE):
        raise ValueError(
            f"digits have shape {np.asarray(images).shape}: give (N, 28, 28) images as "
            "gw.data.load_mnist returns them, or one (28, 28) image."
        )
    return array


def _scale(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    scaled = array.astype(np.float32)
    if scaled.size and (scaled.min() < 0.0 or scaled.max() > 1.0):
        raise ValueError(
            "float digits must already be in [0, 1]; pass uint8 images (0-255) to have them scaled."
        )
    return scaled


def to_keras_input(images: np.ndarray) -> np.ndarray:
    """Scale uint8 digits to [0, 1] and add the channel axis last: ``(N, 28, 28, 1)``.

    Args:
        images: uint8 ``(N, 28, 28)`` (or one ``(28, 28)`` digit), or floats already in
            [0, 1].

    Returns:
        float32 ``(N, 28, 28, 1)``, the layout Keras convolutions expect (N, H, W, C).
    """
    return _scale(_as_digits(images))[..., np.newaxis]


def to_torch_input(images: np.ndarray) -> torch.Tensor:
    """Scale uint8 digits to [0, 1] and add the channel axis first: ``(N, 1, 28, 28)``.

    Args:
        images: uint8 ``(N, 28, 28)`` (or one ``(28, 28)`` digit), or floats already in
            [0, 1].

    Returns:
        a float32 ``torch.Tensor`` ``(N, 1, 28, 28)``, the layout PyTorch expects
        (N, C, H, W).
    """
    import torch

    return torch.from_numpy(np.ascontiguousarray(_scale(_as_digits(images))[:, np.newaxis]))


# --------------------------------------------------------------------------- Keras


def keras_gap_net(seed: int = 0) -> keras.Model:
    """The GAP network for CAM, in Keras: its scores are ``Dense(GAP(conv3))``.

    ``conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) - gap - scores(10, softmax)``,
    3x3 convolutions with ``padding="same"`` and ReLU; ``conv3`` is 7x7x64.

    Args:
        seed: seeds the initial weights (``keras.utils.set_random_seed``).

    Returns:
        an uncompiled ``keras.Sequential``; train it with :func:`train_keras`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((_SIZE, _SIZE, 1), name="digit"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(10, activation="softmax", name="scores"),
        ],
        name="gap_net",
    )


def keras_lecture_cnn(seed: int = 0) -> keras.Model:
    """The lecture's MNIST CNN in Keras, with a Flatten + Dense head (130,890 parameters).

    ``conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 - flatten - dense(128,
    ReLU) - scores(10, softmax)``, 3x3 convolutions with ``padding="same"`` and ReLU.

    Args:
        seed: seeds the initial weights (``keras.utils.set_random_seed``).

    Returns:
        an uncompiled ``keras.Sequential``; train it with :func:`train_keras`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((_SIZE, _SIZE, 1), name="digit"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.MaxPooling2D(2, name="pool3"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="dense"),
            layers.Dense(10, activation="softmax", name="scores"),
        ],
        name="lecture_cnn",
    )


def train_keras(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
) -> dict[str, list[float]]:
    """Train a Keras digit classifier with Adam and cross-entropy, silently.

    It runs ``model.compile(optimizer=Adam(learning_rate), loss=
    "sparse_categorical_crossentropy", metrics=["accuracy"])`` then ``model.fit(...,
    shuffle=True, verbose=0)``. For runs that repeat bit for bit, also call
    ``tf.config.experimental.enable_op_determinism()`` once before training.

    Args:
        model: a model ending in a softmax, such as :func:`keras_gap_net` builds.
        images: uint8 ``(N, 28, 28)`` digits, or a prepared ``(N, 28, 28, 1)`` batch.
        labels: int ``(N,)`` digits 0-9.
        epochs: passes over the data.
        seed: seeds the shuffling (``keras.utils.set_random_seed``).
        batch_size: images per step.
        learning_rate: Adam's step size.

    Returns:
        the training history: ``{"loss": [...], "accuracy": [...]}``, one value per epoch.
    """
    import keras

    inputs = images if np.asarray(images).ndim == 4 else to_keras_input(images)
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        np.asarray(inputs, dtype=np.float32),
        np.asarray(labels, dtype=np.int64),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}


# --------------------------------------------------------------------------- PyTorch


@cache
def _conv_relu_class() -> type:
    """Define :class:`ConvReLU` on first use, so that importing this module skips torch."""
    from torch import nn

    class ConvReLU(nn.Conv2d):
        """A 3x3 convolution (``padding=1``) followed by a ReLU, as one module.

        Like Keras's ``Conv2D(..., activation="relu")``: the module's output is the
        rectified feature map, so ``"conv1"`` names the same map in both frameworks.
        Its weights are an ordinary ``nn.Conv2d``'s.

        Args:
            in_channels: channels of the input map.
            out_channels: number of filters.
        """

        def __init__(self, in_channels: int, out_channels: int) -> None:
            super().__init__(in_channels, out_channels, kernel_size=3, padding=1)

        def forward(self, x: Any) -> Any:
            """``relu(conv(x))``."""
            return nn.functional.relu(super().forward(x))

    ConvReLU.__module__ = __name__
    return ConvReLU


def __getattr__(name: str) -> Any:
    if name == "ConvReLU":
        return _conv_relu_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def torch_gap_net(seed: int = 0) -> torch.nn.Module:
    """The GAP network for CAM, in PyTorch: the same layers and names as :func:`keras_gap_net`.

    ``conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) - gap - flatten - scores(10)``;
    it returns logits (no softmax).

    Args:
        seed: seeds the initial weights (``torch.manual_seed``).

    Returns:
        an ``nn.Sequential`` in eval mode.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        OrderedDict(
            conv1=_conv_relu_class()(1, 16),
            pool1=nn.MaxPool2d(2),
            conv2=_conv_relu_class()(16, 32),
            pool2=nn.MaxPool2d(2),
            conv3=_conv_relu_class()(32, 64),
            gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            scores=nn.Linear(64, 10),
        )
    )
    return model.eval()


def torch_lecture_cnn(seed: int = 0) -> torch.nn.Module:
    """The lecture's MNIST CNN in PyTorch: the same layers and names as :func:`keras_lecture_cnn`.

    ``conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 - flatten - dense(128) -
    dense_relu - scores(10)``; 130,890 parameters; it returns logits (no softmax).

    Args:
        seed: seeds the initial weights (``torch.manual_seed``).

    Returns:
        an ``nn.Sequential`` in eval mode.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        OrderedDict(
            conv1=_conv_relu_class()(1, 32),
            pool1=nn.MaxPool2d(2),
            conv2=_conv_relu_class()(32, 64),
            pool2=nn.MaxPool2d(2),
            conv3=_conv_relu_class()(64, 64),
            pool3=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            dense=nn.Linear(3 * 3 * 64, 128),
            dense_relu=nn.ReLU(),
            scores=nn.Linear(128, 10),
        )
    )
    return model.eval()


def train_torch(
    model: torch.nn.Module,
    images: Any,
    labels: Any,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
) -> list[float]:
    """Train a PyTorch digit classifier with Adam and cross-entropy on the logits.

    The loop every PyTorch course writes: shuffle with a seeded generator, then per batch
    ``zero_grad``, forward, ``cross_entropy(logits, labels)``, ``backward``, ``step``.
    The model is left in eval mode.

    Args:
        model: a model returning logits, such as :func:`torch_gap_net` builds.
        images: uint8 ``(N, 28, 28)`` digits, or a prepared ``(N, 1, 28, 28)`` batch.
        labels: int ``(N,)`` digits 0-9.
        epochs: passes over the data.
        seed: seeds the shuffling.
        batch_size: images per step.
        learning_rate: Adam's step size.

    Returns:
        the mean training loss of each epoch.
    """
    import torch
    from torch.nn import functional

    if isinstance(images, torch.Tensor) and images.ndim == 4:
        inputs = images.float()
    elif np.asarray(images).ndim == 4:
        inputs = torch.as_tensor(np.asarray(images, dtype=np.float32))
    else:
        inputs = to_torch_input(images)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} images but {len(targets)} labels.")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    model.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(inputs), batch_size):
                index = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = functional.cross_entropy(model(inputs[index]), targets[index])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            losses.append(total / len(inputs))
    finally:
        model.eval()
        optimizer.zero_grad(set_to_none=True)
    return losses


# --------------------------------------------------------------------------- both


def accuracy(model: Any, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """The fraction of ``images`` that ``model`` classifies as ``labels``.

    Args:
        model: a Keras or PyTorch digit classifier.
        images: uint8 ``(N, 28, 28)`` digits (prepared here for the model's framework).
        labels: int ``(N,)``.
        batch_size: images per forward pass (bounds the memory used).

    Returns:
        accuracy in [0, 1].
    """
    return float(np.mean(predict_classes(model, images, batch_size) == np.asarray(labels)))


def predict_classes(model: Any, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The predicted digit of each image, in batches, for a Keras or PyTorch model.

    Args:
        model: a Keras or PyTorch digit classifier.
        images: uint8 ``(N, 28, 28)`` digits.
        batch_size: images per forward pass.

    Returns:
        int64 ``(N,)``.
    """
    digits = _as_digits(images)
    predictions = []
    if is_torch_model(model):
        import torch

        with torch.no_grad():
            for start in range(0, len(digits), batch_size):
                batch = to_torch_input(digits[start : start + batch_size])
                predictions.append(model(batch).argmax(dim=1).numpy())
    else:
        for start in range(0, len(digits), batch_size):
            batch = to_keras_input(digits[start : start + batch_size])
            predictions.append(np.asarray(model(batch, training=False)).argmax(axis=1))
    return np.concatenate(predictions).astype(np.int64)


def torch_from_keras(keras_model: keras.Model) -> torch.nn.Module:
    """Copy a trained Keras digit model into the PyTorch model of the same architecture.

    Works for :func:`keras_gap_net` and :func:`keras_lecture_cnn` models. Convolution
    kernels go from Keras's ``(kh, kw, in, out)`` to PyTorch's ``(out, in, kh, kw)``;
    dense kernels are transposed; the first dense layer after a Flatten has its inputs
    reordered, since Keras flattens ``(h, w, c)`` and PyTorch ``(c, h, w)``. The PyTorch
    model returns the logits, i.e. the Keras model's scores before its softmax.

    Args:
        keras_model: a model built by :func:`keras_gap_net` or :func:`keras_lecture_cnn`.

    Returns:
        the PyTorch model, in eval mode.
    """
    import torch

    names = [layer.name for layer in keras_model.layers]
    if "gap" in names:
        model = torch_gap_net()
    elif "flatten" in names:
        model = torch_lecture_cnn()
    else:
        raise ValueError(
            "torch_from_keras copies models built by keras_gap_net or keras_lecture_cnn."
        )
    modules = dict(model.named_modules())
    flatten_shape = None
    for layer in keras_model.layers:
        weights = layer.get_weights()
        if layer.name == "flatten":
            flatten_shape = tuple(layer.input.shape[1:])
        if not weights:
            continue
        kernel, bias = weights
        if kernel.ndim == 4:
            kernel = kernel.transpose(3, 2, 0, 1)
        else:
            kernel = kernel.T
            if flatten_shape is not None:
                h, w, c = flatten_shape
                kernel = (
                    kernel.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(kernel.shape[0], -1)
                )
                flatten_shape = None
        target = modules[layer.name]
        with torch.no_grad():
            target.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            target.bias.copy_(torch.from_numpy(bias))
    return model.eval()


# --------------------------------------------------------------------------- measuring maps


def _maps_at_digit_size(maps: np.ndarray) -> np.ndarray:
    """``(N, h, w)`` maps resized to 28 x 28 (bilinear, as the overlays draw them)."""
    from ..render import resize_map

    array = np.asarray(maps, dtype=np.float32)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise ValueError(f"maps must be (N, h, w) or (h, w), got shape {array.shape}.")
    return np.stack([resize_map(heat, (_SIZE, _SIZE)) for heat in array])


def ink_share(maps: np.ndarray, images: np.ndarray, threshold: int = 50) -> np.ndarray:
    """For each map, the share of its total that lies on the digit's ink.

    Each map is resized to 28 x 28 and its negative values are clipped; ink pixels are those
    brighter than ``threshold``. A map that covers the image evenly scores the image's ink
    area (about 16 % for MNIST); one that sits only on the strokes scores 1.

    Args:
        maps: ``(N, h, w)`` Grad-CAM maps at any resolution, as ``gw.gradcam`` returns.
        images: the ``(N, 28, 28)`` uint8 digits they explain.
        threshold: the gray level above which a pixel counts as ink.

    Returns:
        float ``(N,)`` shares in [0, 1]; NaN for an all-zero map (nothing to share).
    """
    resized = np.maximum(_maps_at_digit_size(maps), 0.0)
    ink = _as_digits(images) > threshold
    if len(ink) != len(resized):
        raise ValueError(f"{len(resized)} maps but {len(ink)} images.")
    totals = resized.sum(axis=(1, 2))
    on_ink = (resized * ink).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, on_ink / np.where(totals > 0, totals, 1.0), np.nan)


def top_share(maps: np.ndarray, rows: int = 10) -> np.ndarray:
    """For each map, the share of its total in the top ``rows`` pixel rows of a 28 x 28 digit.

    The top 10 rows (about a third of the image) hold the bar of a 7 and the loop of a 9.

    Args:
        maps: ``(N, h, w)`` maps at any resolution; resized to 28 x 28, negatives clipped.
        rows: how many pixel rows, from the top, count.

    Returns:
        float ``(N,)`` shares in [0, 1]; NaN for an all-zero map.
    """
    resized = np.maximum(_maps_at_digit_size(maps), 0.0)
    totals = resized.sum(axis=(1, 2))
    top = resized[:, :rows].sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, top / np.where(totals > 0, totals, 1.0), np.nan)
