"""Self-checks for lesson 07 (hooks by hand on your own model).

Each check computes the right answer itself, with the package's engine or from the
model's weights, and compares; a wrong answer gets a hint about the likely slip, never
the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, Question, Quiz, feedback, is_todo

__all__ = [
    "TODO",
    "QUIZ",
    "broken_gradcam",
    "check_cam_from_hooks",
    "check_diagnosis",
    "check_keras_tape",
]


def _array(answer: Any) -> np.ndarray | None:
    if is_tensor(answer):
        answer = to_numpy(answer)
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.dtype.kind == "f" and array.size else None


def check_cam_from_hooks(answer: Any, model: Any, inputs: Any, layer: Any) -> Feedback:
    """Exercise 1: CAM of each image's top class from an activation captured with a hook.

    The right answer is ``sum_k w_k^c A^k`` (no ReLU, not divided by anything), shape
    ``(N, h, w)``, and no hook may be left on ``layer`` afterwards.

    Args:
        answer: the learner's maps, ``(N, h, w)``, numpy or a tensor.
        model: the lesson's TinyResNet (GAP + one dense layer after ``layer``).
        inputs: the batch the maps were computed for.
        layer: the module whose output the dense layer's pooling averages.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your CAM maps, then run this cell.")
    if getattr(layer, "_forward_hooks", None):
        return feedback(
            False,
            f"{len(layer._forward_hooks)} forward hook(s) are still registered on the layer: "
            "remove the hook in a finally block (handle.remove()), then run your cell again.",
        )
    maps = _array(answer)
    if maps is None:
        return feedback(False, f"expected an array of maps, got {type(answer).__name__}.")
    from ..engine import cam, gradcam

    expected = cam(model, inputs, layer=layer).astype(np.float64)
    if maps.shape != expected.shape:
        if maps.ndim == 2 and expected.shape[0] == 1 and maps.shape == expected.shape[1:]:
            return feedback(False, "keep the batch axis: shape (N, h, w).")
        return feedback(False, f"expected shape {expected.shape} (N, h, w), got {maps.shape}.")
    scale = float(np.abs(expected).max()) or 1.0
    if np.allclose(maps, expected, atol=1e-4 * scale):
        return feedback(True, "that is CAM: the dense weights of the class times the maps.")
    if np.allclose(maps, np.maximum(expected, 0), atol=1e-4 * scale):
        return feedback(False, "CAM keeps its negative values: drop the ReLU.")
    grad = gradcam(model, inputs, layer=layer).astype(np.float64)
    if np.allclose(maps, grad, atol=1e-4 * scale):
        return feedback(False, "this is Grad-CAM, not CAM: use the dense layer's weights.")
    ratio = float(np.abs(maps).max()) / scale
    if np.allclose(maps * (1 / ratio), expected, atol=1e-3 * scale) and ratio != 1.0:
        return feedback(False, "the shape is right but the scale is not: do not normalise.")
    return feedback(
        False,
        "not CAM yet. Check that you take the weight row of each image's own top class and "
        "sum over the channel axis (axis 1 in PyTorch's layout).",
    )


def broken_gradcam(model: Any, inputs: Any, layer: Any) -> np.ndarray:
    """A hand-written Grad-CAM with one classic bug hidden in it (exercise 2).

    Compare its maps with ``gw.gradcam`` and find out which mistake it makes.
    """
    import torch

    store: dict[str, Any] = {}

    def hook(module: Any, args: Any, output: Any) -> Any:
        store["A"] = output
        return output.clone()  # safe from a later in-place op

    handle = layer.register_forward_hook(hook)
    try:
        was_training = model.training
        model.eval()
        logits = model(torch.as_tensor(inputs))
        model.train(was_training)
        rows = torch.arange(logits.shape[0])
        score = logits[rows, logits.argmax(dim=1)].sum()
        (grads,) = torch.autograd.grad(score, store["A"])
    finally:
        handle.remove()
    weights = grads.mean(dim=(0, 2, 3), keepdim=True)
    return torch.relu((weights * store["A"]).sum(dim=1)).detach().numpy()


_DIAGNOSIS_CHOICES = (
    "it differentiates the softmax output instead of the score",
    "an in-place operation after the layer overwrote the captured activation",
    "it averages the gradients over the batch axis too",
    "it takes the gradient of the layer's weights instead of its output",
)
_DIAGNOSIS_ANSWER = 2


def check_diagnosis(answer: Any) -> Feedback:
    """Exercise 2: which classic mistake does :func:`broken_gradcam` make? (a letter)."""
    question = Question(
        prompt="Which mistake does broken_gradcam make?",
        answer=_DIAGNOSIS_ANSWER,
        explanation=(
            "grads.mean(dim=(0, 2, 3)) averages over the batch axis too, so every image gets "
            "the same channel weights, a mix of all the images' classes. On a batch of one "
            "the bug is invisible: test with several images of different classes. The "
            "weights must be averaged over height and width only, per image."
        ),
        choices=_DIAGNOSIS_CHOICES,
    )
    result = question.check(answer)
    if result.passed is False and isinstance(answer, str) and answer.strip().lower() in "abd":
        hints = {
            "a": "a softmax would change every map; does the bug show on every input?",
            "b": "the maps differ at block2 too, where no in-place op follows the layer.",
            "d": "a gradient of the weights has no height and width to make a map from.",
        }
        return feedback(False, f"look again: {hints[answer.strip().lower()]}")
    return result


def check_keras_tape(answer: Any, model: Any, inputs: Any, layer_name: str) -> Feedback:
    """Exercise 3: Grad-CAM of the top class with a Keras sub-model and a GradientTape.

    Args:
        answer: the learner's maps ``(N, h, w)``.
        model: a Functional Keras model.
        inputs: the batch.
        layer_name: the layer the exercise names.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your maps, then run this cell.")
    maps = _array(answer)
    if maps is None:
        return feedback(False, f"expected an array of maps, got {type(answer).__name__}.")
    from ..engine import gradcam

    expected = gradcam(model, inputs, layer=layer_name).astype(np.float64)
    if maps.shape != expected.shape:
        return feedback(False, f"expected shape {expected.shape} (N, h, w), got {maps.shape}.")
    scale = float(np.abs(expected).max()) or 1.0
    if np.allclose(maps, expected, atol=1e-4 * scale):
        return feedback(True, "your tape gives the engine's map.")
    pooled_over_batch = gradcam(model, inputs[:1], layer=layer_name).astype(np.float64)
    if maps.shape[0] > 1 and np.allclose(maps[:1], pooled_over_batch, atol=1e-4 * scale):
        return feedback(False, "the first image is right, the others not: one class per image.")
    if np.all(maps >= 0) and not np.allclose(maps, expected, atol=1e-2 * scale):
        return feedback(
            False,
            "check the axes: the gradient is averaged over height and width (axes 1 and 2 "
            "in Keras's layout), never over the batch axis 0.",
        )
    return feedback(False, "not yet: did you apply the ReLU after the weighted sum?")


QUIZ = Quiz(
    [
        Question(
            "Why does a hand-written Grad-CAM use torch.autograd.grad(score, activation) "
            "rather than score.backward()?",
            answer=2,
            explanation=(
                "autograd.grad returns the gradient for the tensors you name and stops there; "
                "backward() fills the .grad of every parameter of the model, work that "
                "Grad-CAM does not need, and it changes the model's .grad attributes."
            ),
            choices=(
                "backward() cannot reach intermediate activations at all",
                "autograd.grad is more accurate",
                "autograd.grad computes only what is needed and touches no parameter's .grad",
                "backward() needs the softmax",
            ),
        ),
        Question(
            "A forward hook is registered in a cell that raises before the line that removes "
            "it. What happens on the next forward passes?",
            answer=1,
            explanation=(
                "the hook stays on the module and runs on every later call, keeping a reference "
                "to each output: memory grows. Remove hooks in a finally block."
            ),
            choices=(
                "nothing: Python removes the hook when the cell fails",
                "the hook keeps running (and keeping tensors) on every forward",
                "the model raises an error until the kernel restarts",
            ),
        ),
        Question(
            "In a ViT with one class token and a 14 x 14 grid of patches, how many tokens does "
            "a block output per image?",
            answer=197,
            explanation="14 * 14 = 196 patch tokens plus 1 class token = 197.",
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
            "Building keras.Model(model.inputs, layer.output) works for which kind of model?",
            answer=0,
            explanation=(
                "only a Functional (or Sequential) model whose layer sits in its own graph: a "
                "layer inside a nested model belongs to the inner graph, and the layers of a "
                "subclassed model have no symbolic output."
            ),
            choices=(
                "a Functional model, for one of its own layers",
                "a subclassed model, after one call",
                "a layer of a model nested inside another model",
            ),
        ),
        Question(
            "Your multi-label model returns torch.sigmoid(logits) from forward: one probability "
            "per class, rows that do not sum to 1. Will the engine refuse it as it refused the "
            "softmax model?",
            answer=1,
            explanation=(
                "no: the check recognises rows that are non-negative and sum to 1, a softmax. "
                "Sigmoid outputs pass it, and their gradient vanishes when they saturate, as "
                "the softmax's does. Pass the logits yourself: the check is a safety net, "
                "not a proof."
            ),
            choices=(
                "yes: every probability output is refused",
                "no: only rows that sum to 1 are recognised, so pass the logits yourself",
            ),
        ),
    ]
)
