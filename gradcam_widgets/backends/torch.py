"""PyTorch adapter: forward hooks scoped to one call, ``torch.autograd.grad`` to them.

No ``loss.backward()``: gradients go only to the captured activations, so no parameter's
``.grad`` is touched and the backward pass stops at the earliest captured layer.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import (
    Capture,
    Head,
    LayerCache,
    LayerInfo,
    Reshape,
    TargetSet,
    check_logits_shape,
    resolve_target_set,
    resolve_targets,
    validate_pixels,
)

_SOFTMAXES = (nn.Softmax, nn.LogSoftmax)

# model -> {(input shape, dtype, module ids): [LayerInfo]}
_LAYER_CACHE = LayerCache()


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluate in eval mode (Dropout off, BatchNorm running stats) and restore each flag."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, was_training in flags:
            module.training = was_training


@contextlib.contextmanager
def _hooks(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _first_conv(model: nn.Module) -> nn.Module | None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Conv3d)):
            return module
    return None


def _run(model: nn.Module, batch: torch.Tensor) -> Any:
    """Call the model, turning a shape mismatch into an error that says what to do."""
    try:
        return model(batch)
    except RuntimeError as error:
        raise ValueError(
            f"the model could not run on inputs of shape {tuple(batch.shape)}: {error}. "
            "PyTorch models take a batch laid out as (N, C, H, W) at the size the model "
            "was built for."
        ) from error


class TorchBackend:
    """Grad-CAM plumbing for ``torch.nn.Module``."""

    name = "torch"
    channels_last = False

    @staticmethod
    def to_numpy(tensor: Any) -> np.ndarray:
        """A tensor as a float32 numpy array on the CPU (bfloat16 included)."""
        if isinstance(tensor, torch.Tensor):
            return _numpy(tensor)
        return np.asarray(tensor)

    @staticmethod
    def layer_name(model: nn.Module, layer: Any) -> str | None:
        """The ``named_modules()`` name of the module object ``layer``, or None."""
        if not isinstance(layer, nn.Module):
            return None
        if layer is model:
            return None
        return next((name for name, m in model.named_modules() if m is layer), None)

    @staticmethod
    def weighted_layers(model: nn.Module) -> list[str]:
        """Modules with parameters of their own, in registration order."""
        return [
            name
            for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))
        ]

    @staticmethod
    def randomized_copy(
        model: nn.Module,
        layers: Sequence[str],
        randomize: Callable[[np.ndarray], np.ndarray],
    ) -> nn.Module:
        """A deep copy (in eval mode) whose named modules' float tensors are randomised."""
        clone = copy.deepcopy(model)
        modules = dict(clone.named_modules())
        with torch.no_grad():
            for name in layers:
                module = modules[name]
                tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
                for tensor in tensors:
                    if not tensor.is_floating_point():
                        continue
                    values = randomize(_numpy(tensor))
                    tensor.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(tensor.dtype))
        return clone.eval()

    def prepare(self, model: nn.Module, inputs: Any) -> torch.Tensor:
        """Return a float batch on the model's device; add a batch axis to a single image."""
        if isinstance(inputs, torch.Tensor):
            batch = inputs.detach()
        else:
            batch = torch.as_tensor(np.asarray(inputs))
        if not batch.is_floating_point():
            batch = batch.float()
        if batch.ndim == 3:
            batch = batch.unsqueeze(0)
        if batch.ndim != 4:
            raise ValueError(
                f"inputs have shape {tuple(batch.shape)}: give a batch (N, C, H, W) or one "
                "image (C, H, W)."
            )
        validate_pixels(batch.cpu().numpy())
        conv = _first_conv(model)
        if isinstance(conv, nn.Conv2d) and batch.shape[1] != conv.in_channels:
            hint = ""
            if batch.shape[-1] == conv.in_channels:
                hint = " They look channels-last: use inputs.permute(0, 3, 1, 2)."
            raise ValueError(
                f"inputs have {batch.shape[1]} channels on axis 1 but the model's first "
                f"convolution expects {conv.in_channels} (layout N, C, H, W).{hint}"
            )
        parameter = next(model.parameters(), None)
        if parameter is not None:
            batch = batch.to(device=parameter.device, dtype=parameter.dtype)
        return batch

    def describe_layers(self, model: nn.Module, batch: torch.Tensor) -> list[LayerInfo]:
        """Run one no-grad forward with a hook on every module and record output shapes."""
        modules = [(name, m) for name, m in model.named_modules() if name]
        key = (tuple(batch.shape[1:]), batch.dtype, tuple(id(m) for _, m in modules))
        cached = _LAYER_CACHE.get(model, key)
        if cached is not None:
            return cached
        seen: dict[str, list[Any]] = {}

        def make_hook(name: str):
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                if name in seen:
                    seen[name][1] += 1
                elif isinstance(output, torch.Tensor):
                    seen[name] = [tuple(output.shape), 1, output, output._version]
                else:
                    seen[name] = [None, 1, None, 0]

            return hook

        handles = [m.register_forward_hook(make_hook(name)) for name, m in modules]
        with _hooks(handles), _eval_mode(model), torch.no_grad():
            _run(model, batch[:1])
        infos = []
        for name, (shape, calls, output, version) in seen.items():
            spatial = (shape[2], shape[3]) if shape is not None and len(shape) == 4 else None
            # The version counter moves when an in-place op writes into the tensor.
            overwritten = output is not None and output._version != version
            infos.append(LayerInfo(name, shape, spatial, calls, overwritten))
        _LAYER_CACHE.put(model, key, infos)
        return infos

    def capture(
        self,
        model: nn.Module,
        batch: torch.Tensor,
        layers: Sequence[str],
        targets: Sequence[TargetSet],
        *,
        with_gradients: bool = True,
        with_head: bool = False,
        reshape: Reshape | None = None,
    ) -> Capture:
        """One forward pass, then one ``autograd.grad`` per target set to every layer."""
        named = dict(model.named_modules())
        infos = self.describe_layers(model, batch)
        copy_needed = {info.name for info in infos if info.overwritten}
        captured: dict[str, torch.Tensor] = {}
        versions: dict[str, int] = {}
        softmax_io: dict[int, torch.Tensor] = {}
        linear_io: dict[int, tuple[nn.Linear, torch.Tensor]] = {}

        def capture_hook(name: str):
            def hook(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
                # A frozen model (or torch.no_grad) gives an output outside the graph: make
                # it a leaf so the score can be differentiated with respect to it.
                if output.requires_grad:
                    base = output
                else:
                    base = output.detach().requires_grad_(True)
                captured[name] = base
                versions[name] = base._version
                if name in copy_needed or base is not output:
                    # Hand the rest of the network a copy, so that an in-place op after
                    # this layer (ReLU(inplace=True)) cannot overwrite what we captured
                    # (and never write into a leaf that requires grad).
                    return base.clone()
                return None

            return hook

        def softmax_hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            softmax_io[id(output)] = args[0]

        def linear_hook(module: nn.Linear, args: Any, output: torch.Tensor) -> None:
            linear_io[id(output)] = (module, args[0])

        handles = [named[name].register_forward_hook(capture_hook(name)) for name in layers]
        for module in model.modules():
            if isinstance(module, _SOFTMAXES):
                handles.append(module.register_forward_hook(softmax_hook))
            elif with_head and isinstance(module, nn.Linear):
                handles.append(module.register_forward_hook(linear_hook))

        with _hooks(handles), _eval_mode(model), torch.enable_grad():
            output = _run(model, batch)
            if not isinstance(output, torch.Tensor):
                raise ValueError(
                    f"the model returned {type(output).__name__}; Grad-CAM needs a model "
                    "that returns one (N, classes) tensor. Wrap it to pick that output."
                )
            changed = [name for name in layers if captured[name]._version != versions[name]]
            if changed:
                raise RuntimeError(
                    f"an in-place operation overwrote the output of {changed} during this "
                    "call but not during the shape probe; please report this model."
                )
            # The paper's y^c is the score before the softmax: when the model ends in an
            # nn.Softmax, take that module's input instead of changing the model.
            logits = softmax_io.get(id(output), output)
            check_logits_shape(tuple(logits.shape))
            logits_np = _numpy(logits)
            resolved = [resolve_target_set(spec, logits_np) for spec in targets]
            activations = [captured[name] for name in layers]
            gradients: list[dict[str, np.ndarray]] = []
            if with_gradients and layers:
                rows = torch.arange(logits.shape[0], device=logits.device)
                for i, (classes, contrast) in enumerate(resolved):
                    score = logits[rows, torch.as_tensor(classes, device=logits.device)].sum()
                    if contrast is not None:
                        index = torch.as_tensor(contrast, device=logits.device)
                        score = score - logits[rows, index].sum()
                    grads = torch.autograd.grad(
                        score,
                        activations,
                        retain_graph=i < len(resolved) - 1,
                        allow_unused=True,
                    )
                    _refuse_missing(layers, grads)
                    gradients.append(
                        {
                            name: _as_map(g, reshape)
                            for name, g in zip(layers, grads, strict=True)
                        }
                    )
            head = None
            if with_head:
                found = linear_io.get(id(logits))
                if found is not None:
                    module, features = found
                    head = Head(_numpy(features), _numpy(module.weight))
        return Capture(
            logits=logits_np,
            activations={
                name: _as_map(a, reshape) for name, a in zip(layers, activations, strict=True)
            },
            targets=[classes for classes, _ in resolved],
            gradients=gradients,
            head=head,
            contrasts=[contrast for _, contrast in resolved],
        )

    def guided_gradients(
        self, model: nn.Module, batch: torch.Tensor, spec: np.ndarray
    ) -> np.ndarray:
        """Guided Backpropagation's input gradients ``(N, C, H, W)`` for ``spec``'s classes."""
        return _guided_gradients(model, batch, spec)


BACKEND = TorchBackend()


def _refuse_missing(layers: Sequence[str], grads: Sequence[torch.Tensor | None]) -> None:
    """A map is exact or refused: a gradient that never arrived is not a zero gradient."""
    missing = [name for name, g in zip(layers, grads, strict=True) if g is None]
    if missing:
        raise ValueError(
            f"no gradient reached the output of {missing}: the class score does not depend "
            "on it in the graph that ran (a layer whose output is detached or not used, or "
            "a compiled model whose hooks saw a different tensor). Choose another layer."
        )


def _as_map(tensor: torch.Tensor, reshape: Reshape | None) -> np.ndarray:
    """A captured tensor as a numpy map ``(N, K, h, w)``, through ``reshape`` if given."""
    if reshape is not None:
        tensor = reshape(tensor.detach())
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
            raise ValueError(
                "reshape= must return a 4-D tensor (N, C, h, w); it returned "
                f"{type(tensor).__name__} of shape {tuple(getattr(tensor, 'shape', ()))}."
            )
    return _numpy(tensor)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    return tensor.numpy().astype(np.float32, copy=False)


class _GuidedReLU(torch.autograd.Function):
    """``max(x, 0)`` forward; backward ``1[x > 0] * max(grad, 0)`` (Guided Backprop)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        output = x.clamp(min=0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (output,) = ctx.saved_tensors
        return grad.clamp(min=0) * (output > 0).to(grad.dtype)


class _GuidedReLUMode(torch.overrides.TorchFunctionMode):
    """Inside this mode every ReLU call (module or functional) uses :class:`_GuidedReLU`.

    A torch-function mode intercepts the call, not the module, so nothing in the model is
    replaced and the rule ends with the ``with`` block. In-place variants are computed out
    of place: the network continues with the returned tensor, as ``nn.ReLU`` does.
    """

    _RELUS = frozenset(
        {
            torch.relu,
            torch.relu_,
            torch.Tensor.relu,
            torch.Tensor.relu_,
            nn.functional.relu,
            nn.functional.relu_,
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in self._RELUS:
            self.calls += 1
            return _GuidedReLU.apply(args[0])
        return func(*args, **(kwargs or {}))


def _guided_gradients(model: nn.Module, batch: torch.Tensor, spec: np.ndarray) -> np.ndarray:
    """Guided Backpropagation's input gradient of each image's target score, as numpy.

    Used by :func:`gradcam_widgets.saliency.guided_backprop`; see its docstring.
    """
    image = batch.detach().clone().requires_grad_(True)
    softmax_io: dict[int, torch.Tensor] = {}

    def softmax_hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        softmax_io[id(output)] = args[0]

    handles = [
        module.register_forward_hook(softmax_hook)
        for module in model.modules()
        if isinstance(module, _SOFTMAXES)
    ]
    mode = _GuidedReLUMode()
    with _hooks(handles), _eval_mode(model), torch.enable_grad():
        with mode:
            output = _run(model, image)
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"the model returned {type(output).__name__}; Guided Backpropagation needs a "
                "model that returns one (N, classes) tensor."
            )
        if mode.calls == 0:
            raise ValueError(
                "the model has no ReLU (nn.ReLU, torch.relu or F.relu), and Guided "
                "Backpropagation is defined by its rule at the ReLUs: use gradcam() instead."
            )
        logits = softmax_io.get(id(output), output)
        check_logits_shape(tuple(logits.shape))
        classes = resolve_targets(spec, logits.detach().cpu().numpy())
        rows = torch.arange(logits.shape[0], device=logits.device)
        score = logits[rows, torch.as_tensor(classes, device=logits.device)].sum()
        (gradient,) = torch.autograd.grad(score, image)
    return _numpy(gradient)
