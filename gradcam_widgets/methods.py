"""The method registry: every class-activation method as one small object.

The maths of a method is how it turns a layer's activations ``A`` (``(N, K, h, w)``)
and the gradients ``G = d y^c / d A`` into a signed map ``S`` (``(N, h, w)``); the rest is
shared: the map shown is ``ReLU(S)`` (evidence *for* the class) or ``ReLU(-S)`` (evidence
*against* it, the counterfactual map of Selvaraju et al.). Most methods weigh channels,
``S = sum_k w_k A^k``, and override only :meth:`Method.channel_weights`, in the spirit of
pytorch-grad-cam's ``get_cam_weights`` and torch-cam's ``_get_weights``.

Adding a method is one entry::

    class MyCAM(Method):
        '''Formula and paper here.'''
        name, label, paper = "mycam", "MyCAM", "Someone et al. 2026"
        def channel_weights(self, activations, gradients):
            return gradients.max(axis=(2, 3))

    register_method(MyCAM())

After that ``gw.gradcam(..., method="mycam")`` and the Explorer offer it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from . import _core

__all__ = [
    "CAM",
    "METHODS",
    "Evidence",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "Method",
    "register_method",
]

#: ``"for"``: where the evidence raises the score; ``"against"``: where it lowers it.
Evidence = Literal["for", "against"]


class Method:
    """A class-activation method: channel weights (or a signed map) from ``A`` and ``G``.

    Attributes:
        name: the key in :data:`METHODS` and the ``method=`` argument.
        label: how the Explorer and figures name it.
        paper: the reference, for captions and docs.
        needs_gradients: False for CAM, which reads the dense layer's weights instead.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    needs_gradients: ClassVar[bool] = True

    def channel_weights(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """``(N, K)`` channel weights ``w_k``; the map is ``sum_k w_k A^k``."""
        raise NotImplementedError(f"{type(self).__name__} defines no channel weights.")

    def signed_map(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """``S = sum_k w_k A^k`` before any ReLU, ``(N, h, w)``."""
        weights = self.channel_weights(activations, gradients)
        return np.einsum("nk,nkhw->nhw", weights, activations)

    def __call__(
        self, activations: np.ndarray, gradients: np.ndarray, evidence: Evidence = "for"
    ) -> np.ndarray:
        """The map shown: ``ReLU(S)`` for ``"for"``, ``ReLU(-S)`` for ``"against"``."""
        signed = self.signed_map(activations, gradients)
        if evidence == "against":
            signed = -signed
        elif evidence != "for":
            raise ValueError(f"evidence must be 'for' or 'against', not {evidence!r}.")
        return np.maximum(signed, 0.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"<method {self.name!r}: {self.label}, {self.paper}>"


class GradCAM(Method):
    """Grad-CAM: ``L^c = ReLU(sum_k alpha_k^c A^k)``, ``alpha_k^c = (1/Z) sum_ij dy^c/dA^k_ij``.

    ``Z = h*w``: each channel's weight is the spatial mean of its gradient, per image.
    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017.
    """

    name = "gradcam"
    label = "Grad-CAM"
    paper = "Selvaraju et al., ICCV 2017"

    def channel_weights(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """The spatial mean of each channel's gradient."""
        return _core.gradcam_weights(activations, gradients)


class GradCAMPlusPlus(Method):
    """Grad-CAM++: ``w_k^c = sum_ij a^kc_ij ReLU(dy^c/dA^k_ij)``.

    ``a^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)`` with ``g = dy^c/dA^k_ij``: the closed
    form that follows when the score is passed through an exponential. Chattopadhay et
    al., "Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep
    Convolutional Networks", WACV 2018.
    """

    name = "gradcam++"
    label = "Grad-CAM++"
    paper = "Chattopadhay et al., WACV 2018"

    def channel_weights(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """Positive gradients weighted by the closed-form ``a^kc_ij``."""
        return _core.gradcam_plus_plus_weights(activations, gradients)


class HiResCAM(Method):
    """HiResCAM: ``L^c = ReLU(sum_k G^k ⊙ A^k)``, element-wise, no spatial averaging.

    ``G^k = dy^c/dA^k``. Where the gradient is constant over each channel (the layer the
    global average pooling averages) it equals Grad-CAM. Draelos & Carin, "Use HiResCAM
    instead of Grad-CAM for faithful explanations of convolutional neural networks",
    arXiv:2011.08891, 2020.
    """

    name = "hirescam"
    label = "HiResCAM"
    paper = "Draelos & Carin, arXiv:2011.08891, 2020"

    def signed_map(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """``sum_k G^k ⊙ A^k``."""
        return (gradients * activations).sum(axis=1)


class CAM(Method):
    """CAM: ``M^c = sum_k w_k^c A^k`` with ``w^c`` the dense layer's weights for class ``c``.

    Only for a head of global average pooling then one dense layer, at the pooled layer;
    no gradients. Zhou et al., "Learning Deep Features for Discriminative Localization",
    CVPR 2016. Computed by :func:`gradcam_widgets.cam`, which reads the head's weights.
    """

    name = "cam"
    label = "CAM"
    paper = "Zhou et al., CVPR 2016"
    needs_gradients = False


#: Every registered method by name.
METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (replacing one of the same name) and return it.

    Raises:
        TypeError: not a :class:`Method` instance.
        ValueError: the method has no name or label.
    """
    if not isinstance(method, Method):
        raise TypeError(f"register a Method instance, not {type(method).__name__}.")
    if not method.name or not method.label:
        raise ValueError("a method needs a name and a label.")
    METHODS[method.name] = method
    return method


for _method in (GradCAM(), GradCAMPlusPlus(), HiResCAM(), CAM()):
    register_method(_method)
