"""Small in-repo models reproducing the layouts of real architectures, and an oracle.

Each is a few layers of the real thing, random weights, seconds to run:

- :class:`TinyViT`: patch embedding, a class token, pre-norm blocks with multi-head
  attention whose internals are module outputs (``(N, heads, T, d)`` and the
  ``(N, heads, T, T)`` attention matrix), a head on the class token (timm's ViT).
- :class:`TinySwin`: channels-last stages ``(N, h, w, C)``, window attention on windows
  folded into the batch axis, patch merging, a head on the mean (timm's Swin).
- :class:`TinyMobileViT`: a convolutional stem, then an unfold of the map into
  ``(N * patch_area, patches, C)`` sequences, a transformer layer, the fold back and a
  fusion convolution (timm's MobileViT block).

:func:`oracle_gradcam` computes Grad-CAM independently of the package: a forward hook
grabs the module's output, ``torch.autograd.grad`` differentiates the chosen scores to
it, and the layout is undone by an explicit ``permute``/``reshape`` written here.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import types
from unittest import mock

import numpy as np
import torch
from torch import nn


def seeded(seed: int):
    """Decorate ``__init__``: weights drawn from ``seed``, the global random state kept."""

    def wrap(init):
        @functools.wraps(init)
        def inner(self, *args, **kwargs):
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                init(self, *args, **kwargs)

        return inner

    return wrap


class Attention(nn.Module):
    """Multi-head self-attention with its internals as module outputs, as in timm."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.Identity()  # (N, heads, T, d)
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)  # (N, heads, T, T)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = self.q_norm(qkv[0]), self.k_norm(qkv[1]), qkv[2]
        attn = self.attn_drop((q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1))
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """ViT: 32x32 images, 4x4 patches (an 8x8 grid), ``prefix`` tokens, 2 blocks.

    ``pool="token"`` reads the class token (ViT, DeiT); ``"avg"`` averages the patch
    tokens, so every layer's patch tokens reach the score.
    """

    @seeded(0)
    def __init__(
        self, dim: int = 24, heads: int = 2, classes: int = 5, prefix: int = 1, pool="token"
    ) -> None:
        super().__init__()
        self.pool = pool
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.prefix = nn.Parameter(torch.randn(1, prefix, dim) * 0.5) if prefix else None
        self.pos_embed = nn.Parameter(torch.randn(1, prefix + 64, dim) * 0.1)
        self.blocks = nn.Sequential(Block(dim, heads), Block(dim, heads))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.prefix is not None:
            tokens = torch.cat([self.prefix.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self.norm(self.blocks(tokens + self.pos_embed))
        n_prefix = 0 if self.prefix is None else self.prefix.shape[1]
        pooled = tokens[:, 0] if self.pool == "token" else tokens[:, n_prefix:].mean(dim=1)
        return self.head(pooled)


def window_partition(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, h, w, C)`` -> ``(N * windows, size*size, C)``."""
    n, h, w, c = x.shape
    x = x.reshape(n, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def window_reverse(windows: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class SwinBlock(nn.Module):
    """Window attention and an MLP on a channels-last map ``(N, h, w, C)``."""

    def __init__(self, dim: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads=2)  # runs on (N * windows, window^2, C)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        windows = self.attn(window_partition(self.norm1(x), self.window))
        x = x + window_reverse(windows, self.window, h, w)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated, then a linear map: ``(N, h, w, C)`` -> ``(N, h/2, w/2, 2C)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        x = x.reshape(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class TinySwin(nn.Module):
    """Swin: 32x48 images, 4x4 patches (8x12, channels-last), 4x4 windows, one merge."""

    @seeded(1)
    def __init__(self, dim: int = 16, classes: int = 5) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.embed_norm = nn.LayerNorm(dim)
        self.stage1 = SwinBlock(dim, window=4)
        self.merge = PatchMerging(dim)
        self.stage2 = SwinBlock(2 * dim, window=2)
        self.norm = nn.LayerNorm(2 * dim)
        self.head = nn.Linear(2 * dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        x = self.norm(self.stage2(self.merge(self.stage1(x))))
        return self.head(x.mean(dim=(1, 2)))


class MobileViTBlock(nn.Module):
    """Local conv, unfold into 2x2-patch sequences, a transformer layer, fold, fuse."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.conv_kxk = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_1x1 = nn.Conv2d(channels, dim, 1)
        self.transformer = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.norm = nn.LayerNorm(dim)
        self.conv_proj = nn.Conv2d(dim, channels, 1)
        self.conv_fusion = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        n, c, h, w = x.shape
        # unfold: (N, C, h, w) -> (N * 4, h/2 * w/2, C), one sequence per pixel of a patch
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 2, 4, 1)
        x = self.norm(self.transformer(x.reshape(n * 4, (h // 2) * (w // 2), c)))
        # fold back
        x = x.reshape(n, 2, 2, h // 2, w // 2, c).permute(0, 5, 3, 1, 4, 2)
        x = self.conv_proj(x.reshape(n, c, h, w))
        return self.conv_fusion(torch.cat([shortcut, x], dim=1))


class TinyMobileViT(nn.Module):
    """MobileViT: a stride-2 stem on 32x32 images, one MobileViT block, pooled head."""

    @seeded(2)
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.SiLU())
        self.block = MobileViTBlock(8, 12)
        self.final = nn.Sequential(nn.Conv2d(8, 16, 1), nn.SiLU())
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.final(self.block(self.stem(x))).mean(dim=(2, 3)))


def oracle_gradcam(
    model: nn.Module, module: nn.Module, x: torch.Tensor, targets: list[int], to_map
) -> np.ndarray:
    """Grad-CAM by hand: hook, ``autograd.grad``, ``to_map`` (the layout undone by hand)."""
    store: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda m, a, out: store.setdefault("out", out))
    try:
        with torch.enable_grad():
            logits = model(x)
            score = sum(logits[i, t] for i, t in enumerate(targets))
            (grads,) = torch.autograd.grad(score, store["out"])
    finally:
        handle.remove()
    acts = to_map(store["out"].detach()).float().numpy()
    grads = to_map(grads).float().numpy()
    weights = grads.mean(axis=(2, 3))
    return np.maximum(np.einsum("nk,nkhw->nhw", weights, acts), 0).astype(np.float32)


def channels_last_to_map(tensor: torch.Tensor) -> torch.Tensor:
    """``(N, h, w, C)`` -> ``(N, C, h, w)``."""
    return tensor.permute(0, 3, 1, 2)


def tokens_to_map(prefix: int, h: int, w: int):
    """``(N, prefix + h*w, C)`` -> ``(N, C, h, w)``, the prefix tokens dropped."""

    def convert(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:, prefix:].reshape(tensor.shape[0], h, w, -1).permute(0, 3, 1, 2)

    return convert


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve ``torchvision*`` imports as modules of mocks.

    timm imports ``torchvision.ops.misc.FrozenBatchNorm2d`` and ``torchvision.transforms``
    at import time, for frozen-norm layers and data pipelines that the models built in
    the tests never use; PyPI's torchvision does not import beside this CPU torch.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda name: mock.MagicMock(name=f"{spec.name}.{name}")
        return module

    def exec_module(self, module):
        pass


def import_timm():
    """timm, with a torchvision stand-in when the real torchvision does not import.

    Returns None when timm is not installed.
    """
    try:
        import timm

        return timm
    except ModuleNotFoundError as error:
        if error.name == "timm":
            return None
    except (ImportError, OSError, RuntimeError):
        pass  # a torchvision built for another torch
    stale = ("timm", "torchvision")
    for name in [n for n in sys.modules if n.split(".")[0] in stale]:
        del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionStub())
    import timm

    return timm
