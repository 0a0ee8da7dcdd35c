"""Framework-free maths of class activation maps.

Every backend hands this module plain numpy arrays in one layout, channels first:
activations ``A`` and gradients ``G = d y^c / d A`` of shape ``(N, K, h, w)``. The
methods differ only in how they turn those into channel weights (or, for HiResCAM, an
element-wise product); the weighted sum and the ReLU are shared.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "class_activation_map",
    "gradcam_plus_plus_weights",
    "gradcam_weights",
    "normalize",
    "weighted_sum",
]


def gradcam_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM channel weights: ``alpha_k = (1/Z) sum_ij dy^c/dA^k_ij``.

    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017.

    Args:
        activations: ``(N, K, h, w)``; unused, kept so every weighting has one signature.
        gradients: ``(N, K, h, w)``.

    Returns:
        ``(N, K)`` weights, averaged over the spatial axes of each image only (never over
        the batch axis: each image has its own weights).
    """
    del activations
    return gradients.mean(axis=(2, 3))


def gradcam_plus_plus_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights.

    ``w_k = sum_ij a^k_ij ReLU(g^k_ij)`` with
    ``a^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)`` (``g = dy^c/dA^k_ij``), the closed
    form that follows when the score is passed through an exponential.
    Chattopadhay et al., "Grad-CAM++: Generalized Gradient-based Visual Explanations
    for Deep Convolutional Networks", WACV 2018.

    Args:
        activations: ``(N, K, h, w)``.
        gradients: ``(N, K, h, w)``.

    Returns:
        ``(N, K)`` weights.
    """
    g2 = gradients**2
    g3 = g2 * gradients
    denominator = 2.0 * g2 + activations.sum(axis=(2, 3), keepdims=True) * g3
    # Where the gradient is zero the numerator is zero too: define the ratio as 0.
    safe = np.where(denominator != 0.0, denominator, 1.0)
    alphas = np.where(denominator != 0.0, g2 / safe, 0.0)
    return (alphas * np.maximum(gradients, 0.0)).sum(axis=(2, 3))


def weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``ReLU(sum_k w_k A^k)`` for each image.

    Args:
        activations: ``(N, K, h, w)``.
        weights: ``(N, K)``.

    Returns:
        float32 ``(N, h, w)``, not normalised.
    """
    maps = np.einsum("nk,nkhw->nhw", weights, activations)
    return np.maximum(maps, 0.0).astype(np.float32)


def hirescam_map(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """HiResCAM: ``ReLU(sum_k g^k * A^k)``, element-wise, with no spatial averaging.

    Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891, 2020. Where the gradient is
    constant over each channel (a GAP head: ``g^k = w_k^c / Z``) it equals Grad-CAM;
    elsewhere averaging the gradient can cancel evidence that HiResCAM keeps.

    Args:
        activations: ``(N, K, h, w)``.
        gradients: ``(N, K, h, w)``.

    Returns:
        float32 ``(N, h, w)``.
    """
    return np.maximum((gradients * activations).sum(axis=1), 0.0).astype(np.float32)


def class_activation_map(activations: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """Classic CAM: ``M_c = sum_k w_k^c A^k`` (no ReLU, no gradients).

    Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016.

    Args:
        activations: ``(N, K, h, w)``, the feature maps that are globally averaged.
        class_weights: ``(N, K)``, the dense layer's weights of each image's class.

    Returns:
        float32 ``(N, h, w)``.
    """
    return np.einsum("nk,nkhw->nhw", class_weights, activations).astype(np.float32)


def normalize(heatmap: np.ndarray) -> np.ndarray:
    """Scale a non-negative map into [0, 1] by its maximum; an all-zero map stays zero.

    Negative values (possible in CAM) are clipped first. Never returns NaN: dividing by a
    zero maximum is the classic bug this function exists to avoid.

    Args:
        heatmap: array of any shape.

    Returns:
        float32 array of the same shape with values in [0, 1].
    """
    clipped = np.maximum(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0)
    peak = float(clipped.max()) if clipped.size else 0.0
    if peak <= 0.0:
        return np.zeros_like(clipped)
    return clipped / peak
