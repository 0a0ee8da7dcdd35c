"""Saliency maps from input gradients: Guided Backpropagation.

Lesson 06 runs Guided Backpropagation through the model-parameter randomisation test
beside Grad-CAM, to show a method that *fails* it (Adebayo et al., NeurIPS 2018). The
framework-specific part (changing the ReLU's backward rule for one call) lives in the
backend; this module resolves the arguments and checks what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import backend_for
from .backends.base import normalize_target_spec

__all__ = ["guided_backprop"]


def guided_backprop(
    model: Any, inputs: Any, target: int | Sequence[int] | None = None
) -> np.ndarray:
    """Guided Backpropagation: the input gradient with a modified ReLU backward rule.

    The gradient of the pre-softmax score ``y^c`` is propagated back to the input, but at
    every ReLU ``h = max(x, 0)`` the signal passed down is
    ``R_in = 1[x > 0] * max(R_out, 0)``: the plain gradient keeps only ``1[x > 0]``
    (backpropagation), the "deconvnet" keeps only ``max(R_out, 0)``; Guided
    Backpropagation keeps both, so only positive signals through active units reach the
    image. Springenberg et al., "Striving for Simplicity: The All Convolutional Net",
    ICLR workshop 2015.

    The rule is applied only during this call; the model's modules, parameters, their
    ``.grad`` and training flags are left as they were.

    Args:
        model: a ``torch.nn.Module`` whose ReLUs are ``nn.ReLU`` modules or
            ``torch.relu`` / ``F.relu`` calls. Keras models are not supported.
        inputs: a batch in the model's layout ``(N, C, H, W)``, numpy or a tensor; one
            image ``(C, H, W)`` is a batch of one.
        target: ``None`` for each image's top class, an int for every image, or one int
            per image.

    Returns:
        float32 ``(N, C, H, W)``: the guided gradient with respect to each input pixel
        (signed; for a picture take ``np.abs(...).max(axis=1)``).

    Raises:
        TypeError: the model's framework has no Guided Backpropagation here (Keras).
        ValueError: the model has no ReLU (the method is defined by its ReLU rule),
            or as :func:`gradcam_widgets.gradcam` for bad inputs and targets.
    """
    backend = backend_for(model)
    guided = getattr(backend, "guided_gradients", None)
    if guided is None:
        raise TypeError(
            f"guided_backprop is implemented for PyTorch models only, not for "
            f"{backend.name} models. Convert the model (for the lesson networks, "
            "zoo.digits.torch_from_keras) or use gradcam(), which supports both frameworks."
        )
    batch = backend.prepare(model, inputs)
    spec = normalize_target_spec(target, int(batch.shape[0]))
    return np.asarray(guided(model, batch, spec), dtype=np.float32)
