"""PyTorch adapter: forward hooks scoped to one call, ``torch.autograd.grad`` to them.

No ``loss.backward()``: gradients go only to the captured activations, so no parameter's
``.grad`` is touched and the backward pass stops at the earliest captured layer.
"""

from __future__ import annotations

import contextlib
import copy
import sys
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
    LayerStep,
    Layout,
    Reshape,
    TargetSet,
    centre_cell,
    check_logits_shape,
    describe_outputs,
    map_info,
    resolve_target_set,
    resolve_targets,
    square,
    to_channels_first,
    validate_pixels,
    width_axis_layout,
)

_SOFTMAXES = (nn.Softmax, nn.LogSoftmax)

# model -> {(input shape, dtype, module ids): [LayerInfo]}
_LAYER_CACHE = LayerCache()


# Modules whose 4-D output is channels-first by definition: they settle a (N, n, n, n)
# shape that could be read either way.
_CHANNELS_FIRST = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.BatchNorm2d,
    nn.InstanceNorm2d,
    nn.GroupNorm,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout2d,
    nn.PixelShuffle,
    nn.Upsample,
)


# Per-channel affine in eval mode: a receptive field does not change through it (group,
# instance and layer norms take statistics over positions, so they are not listed).
_NORMS = (nn.BatchNorm2d,)

# Modules that act element by element: their output has their input's layout.
_ELEMENTWISE = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softplus,
)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluate in eval mode (Dropout off, BatchNorm running stats) and restore each flag.

    A model already in eval mode is left alone: ``eval()`` is not called, since a
    module's ``train()`` may have side effects (timm's EfficientFormer clears a cache
    that the next forward refills inside our graph, and ``copy.deepcopy`` then fails).
    A model that was training gets ``model.train()`` back, side effects included, then
    each module's own flag.
    """
    flags = [(module, module.training) for module in model.modules()]
    if not any(training for _, training in flags):
        yield
        return
    try:
        model.eval()
        yield
    finally:
        model.train(flags[0][1])
        for module, was_training in flags:
            module.training = was_training


def _unwrapped(model: nn.Module) -> nn.Module:
    """The module that computes: ``torch.compile``'s and ``DataParallel``'s wrappers removed.

    The wrapped module's submodules are the same objects (named with a ``_orig_mod.`` or
    ``module.`` prefix), so hooks on them see this call. A compiled graph would run
    without the hooks or hand them tensors outside its autograd graph; the eager module
    computes the same function exactly.
    """
    while True:
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


@contextlib.contextmanager
def _eager() -> Iterator[None]:
    """Run compiled parts (``torch.compile`` inside ``forward``) eagerly, with autograd on.

    Inside ``torch.inference_mode()`` no graph is recorded even under ``enable_grad``;
    the block leaves inference mode for its length.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode(False))
        # Only a model that was compiled has imported dynamo (importing it costs seconds).
        if "torch._dynamo" in sys.modules:
            stack.enter_context(torch.compiler.set_stance("force_eager"))
        yield


@contextlib.contextmanager
def _hooks(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _by_module(module: nn.Module, options: tuple[Layout, ...]) -> Layout | None:
    """The reading a module's type picks for an ambiguous shape.

    A ``Linear`` (or ``LayerNorm``) acts on the last axis, so its 4-D output is
    channels-last and its 3-D output a token sequence.
    """
    if not isinstance(module, (nn.Linear, nn.LayerNorm)):
        return None
    kind = "channels_last" if any(o.kind == "channels_last" for o in options) else "tokens"
    matching = [option for option in options if option.kind == kind]
    return matching[0] if len(matching) == 1 else None


def _first_conv(model: nn.Module) -> nn.Module | None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Conv3d)):
            return module
    return None


# Phrases of PyTorch's errors for inputs of the wrong shape (other RuntimeErrors pass).
_SHAPE_ERRORS = (
    "size mismatch",
    "sizes of tensors must match",
    "shapes cannot be multiplied",
    "must match the size",
    "expected input",
    "expected size",
    "calculated padded input size",
    "kernel size can't be greater",
    "output size is too small",
    "is invalid for input of size",
    "input image size",
    "input height",
    "input width",
    "doesn't match model",
    "channels, but got",
    "to have 3 channels",
    "non-empty 4d",
    "non-empty 3d",
)


def _run(model: nn.Module, batch: torch.Tensor) -> Any:
    """Call the model, turning a shape mismatch into an error that says what to do.

    Only errors that name a shape or size problem are rewritten; any other error is the
    model's own and is raised unchanged.
    """
    try:
        return _unwrapped(model)(batch)
    except (RuntimeError, AssertionError, ValueError) as error:
        text = str(error).lower()
        if not any(phrase in text for phrase in _SHAPE_ERRORS):
            raise
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
    def logits(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
        """One no-grad forward in eval mode; a final ``nn.Softmax`` is read through."""
        softmax_io: dict[int, torch.Tensor] = {}

        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            softmax_io[id(output)] = args[0]

        softmaxes = [m for m in model.modules() if isinstance(m, _SOFTMAXES)]
        handles = [m.register_forward_hook(hook) for m in softmaxes]
        with _hooks(handles), _eval_mode(model), torch.no_grad():
            output = _run(model, batch)
            if not isinstance(output, torch.Tensor):
                raise ValueError(
                    f"the model returned {type(output).__name__}; the engine needs a model "
                    "that returns one (N, classes) tensor. Wrap it to pick that output."
                )
            logits = softmax_io.get(id(output), output)
            check_logits_shape(tuple(logits.shape))
            return _numpy(logits)

    @staticmethod
    def weighted_layers(model: nn.Module) -> list[str]:
        """Modules with parameters of their own, in registration order."""
        return [
            name
            for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))
        ]

    @staticmethod
    def layer_geometry(model: nn.Module) -> list[LayerStep]:
        """``(name, (kernel, stride))`` of the model's children: convolutions and poolings.

        Other children give ``None``; element-wise ones are left out.
        """
        steps: list[LayerStep] = []
        for name, module in _unwrapped(model).named_children():
            if isinstance(module, nn.Conv2d):
                span = (square(module.kernel_size, "kernel") - 1) * square(
                    module.dilation, "dilation"
                ) + 1
                steps.append((name, (span, square(module.stride, "stride"))))
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                kernel = square(module.kernel_size, "kernel")
                stride = module.stride if module.stride is not None else module.kernel_size
                dilation = getattr(module, "dilation", 1)
                span = (kernel - 1) * square(dilation, "dilation") + 1
                steps.append((name, (span, square(stride, "stride"))))
            elif not isinstance(module, _ELEMENTWISE + _NORMS):
                steps.append((name, None))
        return steps

    def cell_gradient(self, model: nn.Module, batch: torch.Tensor, layer: str) -> np.ndarray:
        """The input gradient of the centre cell of ``layer``'s map, summed over channels."""
        info, layout = map_info(self.describe_layers(model, batch), layer)
        module = dict(model.named_modules())[info.name]
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
            captured.append(output)
            # An in-place op after the layer would overwrite what the gradient starts from.
            return output.clone() if info.overwritten else None

        with torch.inference_mode(False):
            x = batch.detach().clone().requires_grad_(True)
        handles = [module.register_forward_hook(hook)]
        with _hooks(handles), _eager(), _eval_mode(model), torch.enable_grad():
            _run(model, x)
            (grad,) = torch.autograd.grad(centre_cell(captured[0], layout).sum(), x)
        return _numpy(grad)

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
        validate_pixels(_numpy(batch))
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
        with torch.inference_mode(False):
            if parameter is not None:
                batch = batch.to(device=parameter.device, dtype=parameter.dtype)
            if batch.is_inference():
                # Made under torch.inference_mode(): autograd cannot record it.
                batch = batch.clone()
        return batch

    def describe_layers(self, model: nn.Module, batch: torch.Tensor) -> list[LayerInfo]:
        """Run one no-grad forward with a hook on every module; read each output's layout.

        The shapes decide most layouts (:func:`describe_outputs`). A shape that reads two
        ways, such as ``(1, 64, 64, 64)``, is settled by the module (a convolution's
        output is channels-first, a ``Linear``'s 4-D output channels-last), by the
        module whose output it took in or passed on unchanged, and last by a second
        probe on a wider image, where only the width axis grows. What stays open is not
        a candidate, and naming it asks for ``reshape=``.
        """
        modules = [(name, m) for name, m in model.named_modules() if name]
        key = (tuple(batch.shape[1:]), batch.dtype, tuple(id(m) for _, m in modules))
        cached = _LAYER_CACHE.get(model, key)
        if cached is not None:
            return cached
        probe = batch[:1]
        seen = self._probe(model, probe, modules, keep=True)
        image = (int(batch.shape[2]), int(batch.shape[3]))
        guesses = describe_outputs([entry["shape"] for entry in seen.values()], image, 1)
        layouts: dict[str, Layout | None] = {}
        by_output: dict[int, str] = {}
        for (name, entry), guess in zip(seen.items(), guesses, strict=True):
            layouts[name] = guess.layout
            if entry["output"] is not None:
                by_output.setdefault(id(entry["output"]), name)
        options = {n: g.options for n, g in zip(seen, guesses, strict=True)}
        for name, entry in seen.items():
            shape = entry["shape"]
            if isinstance(entry["module"], _CHANNELS_FIRST) and shape and len(shape) == 4:
                # A convolution's or pool's output is channels-first whatever its aspect
                # (an adaptive pool's fixed size need not keep the input's).
                layouts[name] = Layout("channels_first", (shape[2], shape[3]))
            elif options[name]:
                layouts[name] = _by_module(entry["module"], options[name])
        self._inherit(seen, layouts, options, by_output)
        open_names = [n for n in seen if options[n] and layouts[n] is None]
        still_open = [n for n in open_names if layouts[n] is None]
        if still_open:
            wide = torch.cat([probe, probe[..., : max(1, probe.shape[-1] // 2)]], dim=-1)
            try:
                wider = self._probe(model, wide, modules, keep=False)
            except Exception:  # a model built for one size: no second look
                wider = {}
            for name in still_open:
                if name in wider and wider[name]["shape"] is not None:
                    layouts[name] = width_axis_layout(
                        options[name], seen[name]["shape"], wider[name]["shape"]
                    )
            self._inherit(seen, layouts, options, by_output)
        infos = []
        for (name, entry), guess in zip(seen.items(), guesses, strict=True):
            layout = layouts[name]
            note = "" if layout is not None else guess.reason
            if layout is None and guess.options:
                note += "; reshape= decides it"
            infos.append(
                LayerInfo(
                    name,
                    entry["shape"],
                    None if layout is None else layout.grid,
                    entry["calls"],
                    entry["overwritten"],
                    layout,
                    note,
                )
            )
        _LAYER_CACHE.put(model, key, infos)
        return infos

    @staticmethod
    def _probe(
        model: nn.Module, batch: torch.Tensor, modules: list[tuple[str, nn.Module]], keep: bool
    ) -> dict[str, dict[str, Any]]:
        """One no-grad forward recording each module's first output, in finishing order."""
        seen: dict[str, dict[str, Any]] = {}

        def make_hook(name: str):
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                if name in seen:
                    seen[name]["calls"] += 1
                    return
                is_tensor = isinstance(output, torch.Tensor)
                source = args[0] if args and isinstance(args[0], torch.Tensor) else None
                seen[name] = {
                    "shape": tuple(output.shape) if is_tensor else None,
                    "calls": 1,
                    "module": module,
                    # Kept alive so that ids stay unique during the probe.
                    "output": output if is_tensor else None,
                    "input": source,
                    "version": output._version if is_tensor else 0,
                }

            return hook

        handles = [m.register_forward_hook(make_hook(name)) for name, m in modules]
        with _hooks(handles), _eager(), _eval_mode(model), torch.no_grad():
            _run(model, batch)
        for entry in seen.values():
            # The version counter moves when an in-place op writes into the tensor.
            output = entry["output"]
            entry["overwritten"] = output is not None and output._version != entry["version"]
            if not keep:
                entry["output"] = entry["input"] = None
        return seen

    @staticmethod
    def _inherit(
        seen: dict[str, dict[str, Any]],
        layouts: dict[str, Layout | None],
        options: dict[str, tuple[Layout, ...]],
        by_output: dict[int, str],
    ) -> None:
        """Settle open layouts from the module whose output this one took in or passed on.

        An element-wise module (ReLU, Dropout, Identity) keeps its input's layout, and a
        block whose output is a submodule's output tensor has that submodule's layout.
        Other modules may permute (a same-shape output is no evidence), so they do not
        inherit their input's layout.
        """
        for name, entry in seen.items():
            if layouts[name] is not None or entry["shape"] is None:
                continue
            tensors = [entry["output"]]
            if isinstance(entry["module"], _ELEMENTWISE):
                tensors.append(entry["input"])
            for tensor in tensors:
                source = by_output.get(id(tensor)) if tensor is not None else None
                if source is None or source == name or layouts.get(source) is None:
                    continue
                if seen[source]["shape"] == entry["shape"]:
                    layouts[name] = layouts[source]
                    break

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
                base = output if output.requires_grad else output.detach().requires_grad_(True)
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

        layouts = {info.name: info for info in infos}
        with _hooks(handles), _eager(), _eval_mode(model), torch.enable_grad():
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
                            name: _as_map(g, reshape, layouts[name], len(batch))
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
                name: _as_map(a, reshape, layouts[name], len(batch))
                for name, a in zip(layers, activations, strict=True)
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


def _as_map(
    tensor: torch.Tensor, reshape: Reshape | None, info: LayerInfo, size: int
) -> np.ndarray:
    """A captured tensor as a numpy map ``(N, K, h, w)``.

    Through ``reshape`` if given, else from the layout the shape probe decided, once the
    tensor is checked to have the probed shape for this batch.
    """
    if reshape is not None:
        tensor = reshape(tensor.detach())
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
            raise ValueError(
                "reshape= must return a 4-D tensor (N, C, h, w); it returned "
                f"{type(tensor).__name__} of shape {tuple(getattr(tensor, 'shape', ()))}."
            )
        return _numpy(tensor)
    shape = tuple(tensor.shape)
    if info.layout is None or info.shape is None:
        raise ValueError(
            f"the output of {info.name!r} has shape {shape}, which is not a map in any "
            "layout the engine can decide: pass reshape= to lay it out as (N, C, h, w)."
        )
    if shape[0] != size or shape[1:] != tuple(info.shape[1:]):
        raise ValueError(
            f"the output of {info.name!r} has shape {shape} for {size} image(s), but "
            f"{tuple(info.shape)} for one image when its layout was read: this layer's "
            "output does not follow the batch. Pass reshape= to lay it out as (N, C, h, w)."
        )
    return to_channels_first(_numpy(tensor), info.layout)


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

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self._RELUS:
            self.calls += 1
            return _GuidedReLU.apply(args[0])
        return func(*args, **(kwargs or {}))


def _guided_gradients(model: nn.Module, batch: torch.Tensor, spec: np.ndarray) -> np.ndarray:
    """Guided Backpropagation's input gradient of each image's target score, as numpy.

    Used by :func:`gradcam_widgets.saliency.guided_backprop`; see its docstring.
    """
    softmax_io: dict[int, torch.Tensor] = {}

    def softmax_hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        softmax_io[id(output)] = args[0]

    handles = [
        module.register_forward_hook(softmax_hook)
        for module in model.modules()
        if isinstance(module, _SOFTMAXES)
    ]
    mode = _GuidedReLUMode()
    with _hooks(handles), _eager(), _eval_mode(model), torch.enable_grad():
        image = batch.detach().clone().requires_grad_(True)
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
