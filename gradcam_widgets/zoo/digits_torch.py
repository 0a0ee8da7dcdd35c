"""The MNIST networks of :mod:`.digits` in PyTorch, their training loop, and a copy from Keras.

Each builder reads :data:`.digits.ARCHITECTURES`. A convolution and its ReLU are one
module (:class:`ConvReLU`), so that ``"conv2"`` names the same feature map (after the
ReLU) in both frameworks. Initial weights are PyTorch's defaults drawn inside
``torch.random.fork_rng`` after seeding it, so a seed always gives the same network and
the global generator is left as it was.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from .digits import ARCHITECTURES, SIZE, to_torch_input

__all__ = ["ConvReLU", "torch_from_keras", "torch_gap_net", "torch_lecture_cnn", "train_torch"]


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x))``."""
        return functional.relu(super().forward(x))


def _build(architecture: str, seed: int) -> nn.Module:
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    channels, side, features = 1, SIZE, 0
    # fork_rng restores the global generator on exit: seeding here changes nothing outside.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for kind, name, size in ARCHITECTURES[architecture]:
            if kind == "conv":
                modules[name] = ConvReLU(channels, size)
                channels = features = size
            elif kind == "pool":
                modules[name] = nn.MaxPool2d(2)
                side //= 2
            elif kind == "gap":
                modules[name] = nn.AdaptiveAvgPool2d(1)
                modules["flatten"] = nn.Flatten()
                features = channels
            elif kind == "flatten":
                modules[name] = nn.Flatten()
                features = channels * side * side
            elif kind == "dense":
                modules[name] = nn.Linear(features, size)
                modules[f"{name}_relu"] = nn.ReLU()
                features = size
            else:  # scores
                modules[name] = nn.Linear(features, size)
    return nn.Sequential(modules).eval()


def torch_gap_net(seed: int = 0) -> nn.Module:
    """The GAP network for CAM, in PyTorch: the same layers and names as ``keras_gap_net``.

    ``conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) - gap - flatten - scores(10)``;
    it returns logits (no softmax).

    Args:
        seed: seeds the initial weights (in a ``fork_rng`` scope; no global state).

    Returns:
        an ``nn.Sequential`` in eval mode.
    """
    return _build("gap_net", seed)


def torch_lecture_cnn(seed: int = 0) -> nn.Module:
    """The lecture's MNIST CNN in PyTorch: the same layers and names as ``keras_lecture_cnn``.

    ``conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 - flatten - dense(128) -
    dense_relu - scores(10)``; 130,890 parameters; it returns logits (no softmax).

    Args:
        seed: seeds the initial weights (in a ``fork_rng`` scope; no global state).

    Returns:
        an ``nn.Sequential`` in eval mode.
    """
    return _build("lecture_cnn", seed)


def train_torch(
    model: nn.Module,
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
    forward, ``cross_entropy(logits, labels)``, ``backward``, an Adam step. The step is
    :class:`_Adam`, the arithmetic of ``torch.optim.Adam`` written out (the same numbers,
    bit for bit): ``torch.optim`` imports ``torch._dynamo`` and sympy on first use, about
    75 MB that a lesson training networks in both frameworks cannot spare on Binder.
    The model is left in eval mode.

    Args:
        model: a model returning logits, such as :func:`torch_gap_net` builds.
        images: uint8 ``(N, 28, 28)`` digits, or a prepared ``(N, 1, 28, 28)`` batch.
        labels: int ``(N,)`` digits 0-9.
        epochs: passes over the data.
        seed: seeds the shuffling (a local ``torch.Generator``).
        batch_size: images per step.
        learning_rate: Adam's step size.

    Returns:
        the mean training loss of each epoch.
    """
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
    optimizer = _Adam(list(model.parameters()), learning_rate)
    losses = []
    model.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(inputs), batch_size):
                index = order[start : start + batch_size]
                loss = functional.cross_entropy(model(inputs[index]), targets[index])
                optimizer.step(torch.autograd.grad(loss, optimizer.params))
                total += loss.item() * len(index)
            losses.append(total / len(inputs))
    finally:
        model.eval()
    return losses


class _Adam:
    """Adam (Kingma & Ba, 2015) as ``torch.optim.Adam`` computes it on CPU, defaults only.

    Per parameter ``p`` with gradient ``g``, at step ``t``::

        m <- m + (1 - beta1) (g - m)          v <- beta2 v + (1 - beta2) g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    in the order of torch's single-tensor implementation, so both give the same bits
    (``tests/test_digits.py`` compares them). Gradients are passed in, never stored in
    ``.grad``.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: tuple[torch.Tensor, ...]) -> None:
        self.t += 1
        bias1 = 1 - self.beta1**self.t
        bias2_sqrt = (1 - self.beta2**self.t) ** 0.5
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)


def torch_from_keras(keras_model: Any) -> nn.Module:
    """Copy a trained Keras digit model into the PyTorch model of the same architecture.

    Works for ``keras_gap_net`` and ``keras_lecture_cnn`` models. Convolution kernels go
    from Keras's ``(kh, kw, in, out)`` to PyTorch's ``(out, in, kh, kw)``; dense kernels
    are transposed; the first dense layer after a Flatten has its inputs reordered, since
    Keras flattens ``(h, w, c)`` and PyTorch ``(c, h, w)``. The PyTorch model returns the
    logits, i.e. the Keras model's scores before its softmax.

    Args:
        keras_model: a model built by ``keras_gap_net`` or ``keras_lecture_cnn``.

    Returns:
        the PyTorch model, in eval mode.
    """
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
