"""Self-checks for lesson 03 (Grad-CAM on the lecture's MNIST CNN).

Each check recomputes the answer with the package and says what looks wrong without
printing it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import TODO, Feedback, as_map, feedback, is_todo, maps_close

__all__ = ["TODO", "check_layer_map", "check_misclassified"]


def check_layer_map(answer: Any, model: Any, inputs: Any, target: int, layer: str) -> Feedback:
    """Exercise 1: the Grad-CAM map of one image for a given class at a given layer.

    Args:
        answer: the learner's map, ``(h, w)`` or ``(1, h, w)``, as ``gw.gradcam`` returns.
        model: the lesson's network (Keras or PyTorch).
        inputs: the exercise's one image, in the model's layout.
        target: the class the exercise asks about.
        layer: the layer the exercise asks about.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the map gw.gradcam gives, then run the cell.")
    mine = as_map(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    from .. import engine

    layers = engine.candidate_layers(model, inputs)
    every_layer = {
        name: heat[0].astype(np.float64)
        for name, heat in engine.gradcam(model, inputs, target=target, layer=layers).items()
    }
    expected = every_layer[layer]
    if maps_close(mine, expected):
        return feedback(
            True,
            "that is the map. Compare it with the map of the predicted class: where do they "
            "differ?",
        )
    for name, heat in every_layer.items():
        if name != layer and heat.shape == mine.shape and maps_close(mine, heat):
            return feedback(
                False,
                f"this is the map of layer {name!r}, not of the layer the exercise asks about.",
            )
    if mine.shape != expected.shape:
        same_size = [name for name, heat in every_layer.items() if heat.shape == mine.shape]
        if same_size:
            return feedback(
                False,
                f"your map is {mine.shape[0]}x{mine.shape[1]}, the resolution of layer(s) "
                f"{', '.join(map(repr, same_size))}. Check the layer you asked for.",
            )
        return feedback(
            False,
            f"expected a {expected.shape[0]}x{expected.shape[1]} map, got shape {mine.shape}.",
        )
    if (
        expected.max() > 0
        and np.isclose(mine.max(), 1.0)
        and maps_close(mine * float(expected.max()), expected)
    ):
        return feedback(
            False,
            "the right map, but normalised to a maximum of 1. Keep gw.gradcam's values.",
        )
    per_class = engine.gradcam_multi(
        model, inputs, list(range(_class_count(model, inputs))), layer
    )
    for other, maps in enumerate(per_class):
        if other != target and maps_close(mine, maps[layer][0].astype(np.float64)):
            return feedback(
                False,
                f"this is the map of class {other}. Which class does the exercise ask about? "
                "Pass it as target=.",
            )
    return feedback(
        False,
        "not the expected map. Call gw.gradcam with the model, the image, the class (target=) "
        "and the layer (layer=), and take the first map of the batch.",
    )


def _class_count(model: Any, inputs: Any) -> int:
    from .. import engine

    return int(engine.predict(model, inputs).shape[1])


def check_misclassified(answer: Any, model: Any, inputs: Any, labels: Any) -> Feedback:
    """Exercise 2: the index of a test image the network gets wrong.

    Args:
        answer: the learner's index into the test set.
        model: the lesson's network (Keras or PyTorch).
        inputs: the test images in the model's layout (numpy or a framework tensor).
        labels: their true digits.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the index of a test image (a whole number).")
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, np.integer)):
        return feedback(False, f"expected a whole number (an index), got {answer!r}.")
    labels = np.asarray(labels)
    index = int(answer)
    if not 0 <= index < len(labels):
        return feedback(False, f"the test set has indices 0 to {len(labels) - 1}.")
    from .. import engine

    predicted = int(engine.predict(model, inputs[index : index + 1])[0].argmax())
    truth = int(labels[index])
    if predicted != truth:
        return feedback(
            True,
            f"the network calls this {truth} a {predicted}. Now compare the maps of class "
            f"{predicted} and class {truth} for it.",
        )
    return feedback(
        False,
        f"the network gets image {index} right (label {truth}, prediction {predicted}). Look "
        "for an index where the prediction and the label differ.",
    )
