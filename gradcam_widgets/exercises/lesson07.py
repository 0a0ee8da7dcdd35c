"""Self-checks for lesson 07 (hooks by hand on your own model).

Each check computes the right answer itself, with the package's engine or from the
model's weights, and compares; a wrong answer gets a hint about the likely slip, never
the value.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, Question, Quiz, feedback, is_todo
from .mysteries import Candidate, Mystery, check_mystery, draw

__all__ = [
    "BROKEN_CANDIDATES",
    "QUIZ",
    "TODO",
    "check_broken_gradcam",
    "check_cam_from_hooks",
    "check_nested_gradcam",
    "draw_broken_gradcam",
    "practice_gap_net",
    "practice_nested_model",
]


def _array(answer: Any) -> np.ndarray | None:
    if is_tensor(answer):
        answer = to_numpy(answer)
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.dtype.kind == "f" and array.size else None


def practice_gap_net() -> tuple[Any, Any, Any, Any]:
    """The CAM check's own PyTorch GAP network, unlike the lesson's in every size.

    ``conv(2 -> 5), ReLU, conv(5 -> 6) -> GAP -> flatten -> Linear(6, 4)``, seeded
    weights, and three 9 x 9 images whose top classes differ, so that a map of one class
    for every image shows.

    Returns:
        ``(model, images (3, 2, 9, 9), layer (the second conv), dense (the Linear))``.
    """
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(_PRACTICE_SEED)
    net = nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(5, 6, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.7)
    offsets = torch.tensor([-2.0, 0.0, 2.0]).reshape(3, 1, 1, 1)
    images = torch.rand((3, 2, 9, 9), generator=generator) + offsets
    return net.eval(), images, net[2], net[5]


def _cam_slips(
    model: Any, inputs: Any, layer: Any, dense: Any
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """CAM of each image's top class, and the maps of the usual slips with a hint each."""
    from ..engine import cam, gradcam, predict

    right = cam(model, inputs, layer=layer).astype(np.float64)
    top = predict(model, inputs).argmax(axis=1)
    peak = np.abs(right).reshape(len(right), -1).max(axis=1).reshape(-1, 1, 1)
    slips = [
        (np.maximum(right, 0), "CAM keeps its negative values: drop the ReLU."),
        (
            gradcam(model, inputs, layer=layer).astype(np.float64),
            "this is Grad-CAM, not CAM: use the dense layer's weights.",
        ),
        (right / np.where(peak > 0, peak, 1.0), "the maps are scaled: do not normalise."),
        (right / (float(np.abs(right).max()) or 1.0), "the maps are scaled: do not normalise."),
    ]
    if len(set(top.tolist())) > 1:
        first = cam(model, inputs, target=int(top[0]), layer=layer).astype(np.float64)
        slips.append((first, "every map is of the first image's class: take each image's own."))
    return right, slips


def _run_without_engine(function: Any, *args: Any) -> tuple[np.ndarray | None, Feedback | None]:
    """Call the learner's function with the package's engine off; its maps, or what went wrong."""
    try:
        with _engine_switched_off():
            result = function(*args)
    except EngineSwitchedOff as error:
        return None, feedback(False, str(error))
    except Exception as error:  # the learner's code: report what broke, whatever it is
        return None, feedback(False, f"your function raised {type(error).__name__}: {error}")
    if is_todo(result):
        return None, feedback(None, "your function still returns TODO: write its body.")
    maps = _array(result)
    if maps is None:
        return None, feedback(False, f"return an array of maps, not {type(result).__name__}.")
    return maps, None


def _compare(
    maps: np.ndarray, right: np.ndarray, slips: list[tuple[np.ndarray, str]], where: str
) -> Feedback | None:
    """None when ``maps`` is ``right``; otherwise the hint of the slip it matches, if any."""
    if maps.shape != right.shape:
        if maps.shape == right.shape[1:] or (maps.ndim == 2 and len(right) > 1):
            return feedback(False, f"{where}: keep the batch axis, one map per image (N, h, w).")
        for slip, message in slips:
            if maps.shape == slip.shape:
                return feedback(False, f"{where}: {message}")
        return feedback(
            False, f"{where}: expected maps of shape (N, h, w) = {right.shape}, got {maps.shape}."
        )
    scale = float(np.abs(right).max()) or 1.0
    if np.allclose(maps, right, rtol=1e-4, atol=1e-4 * scale):
        return None
    for slip, message in slips:
        if slip.shape == maps.shape and np.allclose(maps, slip, rtol=1e-4, atol=1e-4 * scale):
            return feedback(False, f"{where}: {message}")
    return feedback(False, f"{where}: not right yet.")


def check_cam_from_hooks(
    function: Any, model: Any = None, inputs: Any = None, layer: Any = None, dense: Any = None
) -> Feedback:
    """Exercise 1: CAM of each image's top class from an activation captured with a hook.

    ``function(model, inputs, layer, dense)`` must return ``M^c = sum_k w_k^c A^k`` (Zhou
    et al., CVPR 2016, eq. 2; no ReLU, no scaling), shape ``(N, h, w)``, for each image's
    top class, and leave no hook on ``layer``. The check runs it on the lesson's network
    and on :func:`practice_gap_net` with the package's engine switched off (so ``gw.cam``
    is no way round the hook), and compares with the engine's maps computed beforehand.

    Args:
        function: the learner's function.
        model: the lesson's TinyResNet (GAP + one dense layer after ``layer``); optional.
        inputs: the lesson's batch.
        layer: the module whose output the pooling averages.
        dense: the final ``nn.Linear``.
    """
    if is_todo(function):
        return feedback(None, "replace TODO with your function, then run this cell.")
    if not callable(function):
        return feedback(
            False, "pass the function itself: cam_from_hook(model, inputs, layer, dense)."
        )
    cases = [] if model is None else [(model, inputs, layer, dense)]
    cases.append(practice_gap_net())
    for number, (case_model, case_inputs, case_layer, case_dense) in enumerate(cases):
        where = (
            "on the lesson's network"
            if number == 0 and model is not None
            else "on the check's own network (other sizes, two classes in the batch)"
        )
        right, slips = _cam_slips(case_model, case_inputs, case_layer, case_dense)
        maps, problem = _run_without_engine(
            function, case_model, case_inputs, case_layer, case_dense
        )
        hooks = getattr(case_layer, "_forward_hooks", None)
        if hooks:
            count = len(hooks)
            hooks.clear()  # the check's own models must stay clean for the next run
            return feedback(
                False,
                f"{where}: {count} forward hook(s) were left on the layer (the check removed "
                "them): remove the hook in a finally block (handle.remove()).",
            )
        if problem is not None:
            return (
                problem
                if problem.passed is None
                else feedback(False, f"{where}: {problem.message}")
            )
        assert maps is not None
        wrong = _compare(maps, right, slips, where)
        if wrong is not None:
            if wrong.message.endswith("not right yet."):
                return feedback(
                    False,
                    f"{where}: not CAM yet. Check that you take the weight row of each image's "
                    "own top class and sum over the channel axis (axis 1 in PyTorch's layout).",
                )
            return wrong
    where = "on the lesson's network and on another one" if model is not None else "on its network"
    return feedback(True, f"that is CAM, the dense weights of each class times the maps, {where}.")


def _hand_gradcam(model: Any, inputs: Any, layer: Any, mistake: str) -> np.ndarray:
    """Grad-CAM by hand with hooks, as in the lesson, with ``mistake`` written into it."""
    import torch

    if not isinstance(getattr(layer, "weight", None), torch.Tensor) or layer.weight.ndim != 4:
        raise ValueError(
            "call it with a convolution layer of the model, e.g. resnet.block2.conv1 or "
            "resnet.block2.conv2."
        )
    store: dict[str, Any] = {}

    def hook(module: Any, args: Any, output: Any) -> Any:
        store["A"] = output
        if mistake != "in-place":
            return output.clone()  # the network goes on with a copy: safe from in-place ops
        return None

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    try:
        model.eval()
        logits = model(torch.as_tensor(inputs))
        rows = torch.arange(logits.shape[0])
        top = logits.argmax(dim=1)
        scores = torch.softmax(logits, dim=1) if mistake == "softmax" else logits
        score = scores[rows, top].sum()
        if mistake == "weights":
            (weight_grad,) = torch.autograd.grad(score, layer.weight)  # (K, C, kh, kw)
            alpha = weight_grad.mean(dim=(1, 2, 3)).reshape(1, -1, 1, 1)
        else:
            (grads,) = torch.autograd.grad(score, store["A"])
            axes = (0, 2, 3) if mistake == "batch" else (2, 3)
            alpha = grads.mean(dim=axes, keepdim=True)
    finally:
        handle.remove()
        model.train(was_training)
    weighted = (alpha * store["A"]).sum(dim=1)
    maps = weighted if mistake == "no relu" else torch.relu(weighted)
    return maps.detach().numpy()


def _candidate(mistake: str, choice: str, hint: str, explanation: str) -> Candidate:
    def broken(model: Any, inputs: Any, layer: Any) -> np.ndarray:
        return _hand_gradcam(model, inputs, layer, mistake)

    return Candidate(choice, broken, hint, explanation)


#: Exercise 2's candidate mistakes, in letter order (a-e).
BROKEN_CANDIDATES = (
    _candidate(
        "softmax",
        "it differentiates the softmax probability instead of the score before it",
        "a softmax score changes nothing between the images of a batch (each map is the same "
        "alone and in a batch), leaves no negative values, and is wrong at block2.conv2 as "
        "much as at block2.conv1. Test all three.",
        "each map is the same alone and in a batch, non-negative, and wrong at both "
        "convolutions: the gradient was taken of p_c = softmax(y)_c, which is p_c (dy^c/dA - "
        "sum_j p_j dy^j/dA) and fades as the network grows confident. Differentiate the logit.",
    ),
    _candidate(
        "batch",
        "it averages the gradients over the batch axis as well as over height and width",
        "averaging over the batch would leave a batch of one exact (compare one image alone "
        "with gw.gradcam), and would make each map change with the other images of its batch.",
        "alone, each image's map is exact; in a batch, each changes with its neighbours: "
        "every image got the same channel weights, pooled over axis 0. Average over the "
        "spatial axes only.",
    ),
    _candidate(
        "weights",
        "it takes the gradient of the layer's weights instead of its output",
        "a weight gradient is shared by the whole batch (each map would change with the "
        "other images), and it is wrong on a single image too.",
        "the maps change with the other images of the batch and are wrong even for one "
        "image alone: the weights are shared by the whole batch, and their gradient answers "
        "another question than d y^c / d A. Differentiate the layer's output.",
    ),
    _candidate(
        "in-place",
        "an in-place operation after the layer overwrote the captured activation",
        "an overwrite needs an in-place op right after the layer. block2.conv2 has none (its "
        "output goes into `out + x`, a new tensor): there the map would be exact.",
        "exact at block2.conv2, wrong at block2.conv1, whose output the block's in-place ReLU "
        "overwrites: the hook kept the tensor itself. Return output.clone() from the hook.",
    ),
    _candidate(
        "no relu",
        "it leaves out the final ReLU",
        "without the ReLU the maps would have negative values, and agree with gw.gradcam "
        "wherever gw.gradcam's map is positive. Look at their smallest values.",
        "the maps go negative and agree with gw.gradcam wherever it is positive: the ReLU "
        "after the weighted sum is missing.",
    ),
)


def draw_broken_gradcam(rng: random.Random | None = None) -> Mystery:
    """Exercise 2: a hand-written Grad-CAM with one of :data:`BROKEN_CANDIDATES` hidden in it.

    Call the result like ``broken(model, inputs, layer)`` with a convolution layer; it
    returns ``(N, h, w)`` maps of each image's top class. Which mistake it makes is drawn
    here, at random unless ``rng`` is given (tests), so reading this source does not say
    which one a learner got.
    """
    return draw("broken_gradcam", BROKEN_CANDIDATES, rng)


def check_broken_gradcam(mystery: Any, answer: Any) -> Feedback:
    """Exercise 2: whether ``answer`` (a letter of ``mystery.choices``) names the drawn mistake."""
    return check_mystery(mystery, answer)


class EngineSwitchedOff(RuntimeError):
    """Raised by the package's backends while a check runs the learner's own function."""


@contextmanager
def _engine_switched_off() -> Iterator[None]:
    """While active, every loaded backend refuses to run a model for the package.

    ``gw.gradcam``, ``gw.explain``, ``gw.cam`` and ``gw.predict`` all reach the model
    through a backend's ``capture`` or ``logits``; shadowing those two methods on the
    backend instances refuses every such shortcut, however it was imported.
    """
    from .. import backends

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise EngineSwitchedOff(
            "the package's map functions are switched off while the check runs your "
            "function: compute the map with your own sub-model and GradientTape."
        )

    instances = {}
    for entry in backends.BACKENDS:  # several entries may share one adapter module
        module = sys.modules.get(f"{backends.__name__}{entry.module}")
        instance = getattr(module, "BACKEND", None)
        if instance is not None:
            instances[id(instance)] = instance
    for instance in instances.values():
        instance.capture = instance.logits = refuse  # shadows the class's methods
    try:
        yield
    finally:
        for instance in instances.values():
            del instance.capture, instance.logits


def practice_nested_model() -> tuple[Any, np.ndarray, str, str]:
    """The check's own nested Keras model, unlike the lesson's in every name and size.

    ``Input(12, 12, 2) -> Rescaling(0.5) -> trunk -> GAP -> Dense(8, relu) -> Dense(5)``,
    where ``trunk`` is a Functional model ``conv(4, relu) "c1" -> conv(6) "c2" -> ReLU "r2"
    -> max-pool "p"``. Fixed seeds make its three images' top classes differ and its
    weighted sums at ``c2`` negative in places, so the usual slips all show.

    Returns:
        ``(model, images (3, 12, 12, 2), backbone_name, layer_name)``.
    """
    import keras
    from keras import layers

    def init(seed: int) -> Any:
        return keras.initializers.RandomNormal(stddev=0.6, seed=seed)

    trunk_in = keras.Input((12, 12, 2))
    h = layers.Conv2D(
        4,
        3,
        padding="same",
        activation="relu",
        name="c1",
        kernel_initializer=init(1),
        bias_initializer=init(2),
    )(trunk_in)
    h = layers.Conv2D(
        6, 3, padding="same", name="c2", kernel_initializer=init(3), bias_initializer=init(4)
    )(h)
    h = layers.ReLU(name="r2")(h)
    trunk = keras.Model(trunk_in, layers.MaxPooling2D(name="p")(h), name="trunk")
    outer_in = keras.Input((12, 12, 2))
    h = trunk(layers.Rescaling(0.5, name="halve")(outer_in))
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    h = layers.Dense(
        8, activation="relu", name="hidden", kernel_initializer=init(5), bias_initializer=init(6)
    )(h)
    model = keras.Model(outer_in, layers.Dense(5, name="scores", kernel_initializer=init(7))(h))
    rng = np.random.default_rng(_PRACTICE_SEED)
    contrast = rng.uniform(0.0, 4.0, (3, 1, 1, 2))  # images unlike each other
    images = (rng.random((3, 12, 12, 2)) * contrast).astype(np.float32)
    return model, images, "trunk", "c2"


_PRACTICE_SEED = 0


def _nested_slips(
    model: Any, images: np.ndarray, backbone_name: str, layer_name: str
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """The right maps, and the maps of the usual slips with what to say about each."""
    from ..engine import explain, gradcam

    name = f"{backbone_name}/{layer_name}"
    found = explain(model, images, [None], name)
    a, g = found.activations[name].astype(np.float64), found.gradients[0][name]
    weights = g.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    raw = (weights * a).sum(axis=1)
    right = np.maximum(raw, 0)
    top = found.logits.argmax(axis=1)
    pooled = g.astype(np.float64).mean(axis=(0, 2, 3), keepdims=True)
    peak = right.reshape(len(right), -1).max(axis=1).reshape(-1, 1, 1)
    slips = [
        (raw, "the map has negative values: apply a ReLU to the weighted sum."),
        (
            np.maximum((pooled * a).sum(axis=1), 0),
            "every image got the same channel weights: average the gradient over height "
            "and width (axes 1 and 2 in Keras's layout), not over the batch axis 0.",
        ),
        (
            right / np.where(peak > 0, peak, 1.0),
            "the map is scaled to a maximum of 1: return it unnormalised.",
        ),
        (
            right / (float(right.max()) or 1.0),
            "the maps are divided by their largest value: return them unnormalised.",
        ),
    ]
    if len(set(top.tolist())) > 1:
        first = gradcam(model, images, target=int(top[0]), layer=name)
        slips.append(
            (first, "every map is of the first image's class: take each image's own top class.")
        )
    backbone = model.get_layer(backbone_name)
    for other in backbone.layers[1:]:
        if other.name == layer_name:
            continue
        other_map = gradcam(model, images, layer=f"{backbone_name}/{other.name}")
        slips.append(
            (other_map, f"this is the map at {other.name!r}: take the layer the task names.")
        )
    slips.append(
        (
            gradcam(model, images, layer=backbone_name),
            "this is the map at the backbone's output: take the layer inside it that the "
            "task names.",
        )
    )
    before = model.layers[1 : model.layers.index(backbone)]
    if len(before) == 1 and type(before[0]).__name__ == "Rescaling":
        scale = float(np.asarray(before[0].scale))
        skipped = gradcam(model, images / scale, layer=name)
        slips.append(
            (
                skipped,
                f"the images skipped the {before[0].name!r} layer in front of the backbone: run "
                "every layer of the outer model, the ones before the backbone too.",
            )
        )
    return right, slips


def check_nested_gradcam(
    function: Any,
    model: Any = None,
    images: Any = None,
    backbone_name: str | None = None,
    layer_name: str | None = None,
) -> Feedback:
    """Exercise 3: Grad-CAM at a layer inside a nested backbone, with a sub-model and a tape.

    ``function(model, backbone_name, layer_name, images)`` must return the Grad-CAM maps
    ``(N, h, w)`` of each image's top class at ``backbone_name``'s layer ``layer_name``:
    ``ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of ``d y^c / d A^k``
    (Selvaraju et al., 2017, eq. 1-2). The check runs it on the lesson's model and on
    :func:`practice_nested_model`, with the package's engine switched off, and compares
    with the engine's maps computed beforehand.

    Args:
        function: the learner's function.
        model: the lesson's nested model (optional: without it, only the check's own).
        images: the lesson's batch, channels last.
        backbone_name: the name of the model inside ``model``.
        layer_name: the layer inside the backbone.
    """
    if is_todo(function):
        return feedback(None, "replace TODO with your function, then run this cell.")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself: gradcam_nested(model, backbone_name, layer_name, images).",
        )
    cases: list[tuple[Any, np.ndarray, str, str]] = []
    if model is not None:
        if backbone_name is None or layer_name is None:
            raise ValueError(
                "with the lesson's model, give the backbone's name and the layer's too: "
                "check_nested_gradcam(function, model, images, backbone_name, layer_name)."
            )
        cases.append((model, np.asarray(images, dtype=np.float32), backbone_name, layer_name))
    cases.append(practice_nested_model())
    for number, (case_model, case_images, case_backbone, case_layer) in enumerate(cases):
        right, slips = _nested_slips(case_model, case_images, case_backbone, case_layer)
        maps, problem = _run_without_engine(
            function, case_model, case_backbone, case_layer, case_images
        )
        where = (
            "on the lesson's model"
            if number == 0 and model is not None
            else (
                "on the check's own model (other names and sizes, a Rescaling in front of the "
                "backbone, two dense layers after it)"
            )
        )
        if problem is not None:
            if problem.passed is None:
                return problem
            if "raised" in problem.message:
                return feedback(
                    False,
                    f"{where}: {problem.message[:400]} (a layer inside the backbone belongs to "
                    "the backbone's own graph: keras.Model can only join tensors of one graph.)",
                )
            return feedback(False, f"{where}: {problem.message}")
        assert maps is not None
        wrong = _compare(maps, right, slips, where)
        if wrong is not None:
            if wrong.message.endswith("not right yet."):
                return feedback(
                    False,
                    f"{where}: not Grad-CAM yet. Check the score (each image's own top logit), "
                    "that the gradient is of the score with respect to the layer's output, and "
                    "the axes (channels last).",
                )
            return wrong
    where = "on the lesson's model and on another one" if model is not None else "on its model"
    return feedback(
        True,
        "your sub-model of the backbone and the outer layers run by hand inside the tape give "
        f"the engine's maps, {where}.",
    )


QUIZ = Quiz(
    [
        Question(
            "In gradcam_by_hand you replace `(grads,) = torch.autograd.grad(score, saved['A'])` "
            "by `score.backward()` followed by `grads = saved['A'].grad`. What happens when the "
            "function runs?",
            answer=1,
            explanation=(
                "saved['A'] is an intermediate tensor, not a leaf: backward() keeps .grad only "
                "for leaves (the parameters, whose .grad it fills as a side effect), so "
                "saved['A'].grad is None (PyTorch warns) and grads.mean(...) fails. Call "
                "saved['A'].retain_grad() before backward(), or ask autograd.grad for exactly "
                "the tensor you need."
            ),
            choices=(
                "the same maps, only slower",
                "grads is None, so the next line fails",
                "backward() raises, because the score of a batch is not a scalar",
                "the maps are 4 times larger: the 4 images' gradients add up",
            ),
        ),
        Question(
            "A forgotten forward hook appends block2's output (4 images, 16 channels, 14 x 14 "
            "positions, float32) to a list at every forward pass. How many megabytes (10^6 "
            "bytes) does the list hold after 250 forward passes of that batch?",
            answer=12.544,
            tolerance=0.06,
            explanation=(
                "4 * 16 * 14 * 14 = 12,544 numbers of 4 bytes = 50,176 bytes per pass; 250 "
                "passes keep 12.5 MB alive, and the list grows for as long as the hook stays."
            ),
        ),
        Question(
            "A ViT with one class token turns a 224 x 224 image into patches; each block "
            "outputs tokens of shape (N, 257, C). How many pixels wide is one patch?",
            answer=14,
            explanation=(
                "257 tokens = 1 class token + 256 patch tokens, a 16 x 16 grid; 224 pixels / "
                "16 patches = 14 pixels per patch. tokens_to_grid for this model drops index 0 "
                "and reshapes the rest to (N, 16, 16, C)."
            ),
        ),
        Question(
            "A ViT without a class token feeds the head the mean of all its patch tokens after "
            "the final norm. Which layer's map is then non-empty and the natural choice?",
            answer=1,
            explanation=(
                "every patch token now reaches the score through the mean, so the layers after "
                "the last attention get gradients too, and the last candidate (the final "
                "norm) works as on a CNN; the engine then picks the last candidate."
            ),
            choices=(
                "still the last block's first LayerNorm: nothing after it has a gradient",
                "the final norm, the last candidate, as on a CNN",
                "the patch embedding only",
            ),
        ),
        Question(
            "At `block2` of TinyResNet (right before the global average pooling and the dense "
            "layer) someone forgets the spatial mean and weights each position by its own "
            "gradient: map = ReLU(sum_k g_k(i, j) A_k(i, j)). Compared with Grad-CAM at "
            "block2, this map is",
            answer=0,
            explanation=(
                "the score is sum_k w_k^c mean_ij A_k(i, j) + b, so its gradient at every "
                "position is w_k^c / 196: the same number as its mean. The forgotten mean "
                "changes nothing there. At block2.conv1, where the gradient varies from "
                "position to position, the two maps differ."
            ),
            choices=(
                "identical",
                "196 times larger",
                "similar, but with its peak elsewhere",
                "zero everywhere",
            ),
        ),
        Question(
            "Your multi-label model returns s = torch.sigmoid(logits). For one image, the "
            "class c has s_c = 0.99. Compared with the Grad-CAM map of the logit y^c at the "
            "same layer, the map of s_c (computed with allow_probabilities=True) is",
            answer=1,
            explanation=(
                "ds_c/dA = s_c (1 - s_c) dy^c/dA: one positive number, 0.0099 here, times the "
                "logit's gradient. The channel weights shrink by that factor and the ReLU keeps "
                "the shape, so the map is the logit's map scaled down, vanishing as s_c "
                "saturates. Unlike the softmax, a sigmoid involves no other class. The engine "
                "refuses only outputs whose rows look like a softmax (non-negative, summing to "
                "1), which a sigmoid's rows may or may not do: pass the logits yourself."
            ),
            choices=(
                "identical to the logit's map",
                "the logit's map times about 0.01: the same shape, nearly vanished",
                "a different shape: the other classes' gradients are mixed in, as with a softmax",
                "the logit's map times 0.99",
            ),
        ),
        Question(
            "In your Keras Grad-CAM, tape.gradient(score, A) returns None. Which of these "
            "codes does that? (sub = keras.Model(net.input, [conv.output, net.output]), built "
            "before the tape.)",
            answer=2,
            explanation=(
                "a tape differentiates along the operations it recorded. In (c) the score "
                "comes from a second forward pass that starts again from the images and never "
                "uses this A, so no recorded path leads from A to the score: None. In (a) the "
                "head is run on A itself inside the tape, a path exists. In (b) the tape "
                "records while the sub-model (built earlier) runs, which is all it needs. In "
                "(d) tape.gradient is called after the with block: recording has stopped, but "
                "what was recorded is kept."
            ),
            choices=(
                "A, _ = sub(x), then logits = net.get_layer('dense')(net.get_layer('gap')(A)), "
                "all inside the tape",
                "sub is built before the tape and only called inside it",
                "A, _ = sub(x) and logits = net(x), both inside the tape",
                "tape.gradient(score, A) is called after the with block has ended",
            ),
        ),
    ]
)
