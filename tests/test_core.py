"""The framework-free maths, on arrays small enough to check by hand."""

import numpy as np
import pytest

from gradcam_widgets import _core


def test_gradcam_weights_average_each_image_over_space_only():
    grads = np.zeros((2, 2, 2, 2), dtype=np.float32)
    grads[0, 0] = [[1, 2], [3, 6]]  # mean 3
    grads[0, 1] = [[-4, 0], [0, 0]]  # mean -1
    grads[1, 0] = 8.0  # image 2 differs: pooling over the batch would mix them
    weights = _core.gradcam_weights(None, grads)
    np.testing.assert_array_equal(weights, [[3.0, -1.0], [8.0, 0.0]])


def test_weighted_sum_applies_relu():
    acts = np.array([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    weights = np.array([[1.0, -1.0]])
    # 1*[1, 2] - 1*[3, 0] = [-2, 2] -> ReLU -> [0, 2]
    np.testing.assert_array_equal(_core.weighted_sum(acts, weights), [[[0.0, 2.0]]])


def test_hirescam_is_elementwise():
    acts = np.array([[[[1.0, 2.0]], [[1.0, 1.0]]]])
    grads = np.array([[[[3.0, -1.0]], [[1.0, 5.0]]]])
    # channel sums: [3*1 + 1*1, -1*2 + 5*1] = [4, 3]
    np.testing.assert_array_equal(_core.hirescam_map(acts, grads), [[[4.0, 3.0]]])


def test_gradcam_plus_plus_weights_by_hand():
    acts = np.array([[[[1.0, 3.0]]]])  # sum = 4
    grads = np.array([[[[1.0, -1.0]]]])
    # alpha_ij = g^2 / (2 g^2 + 4 g^3): g=1 -> 1/6, g=-1 -> 1/(2-4) = -1/2
    # w = 1/6 * relu(1) + (-1/2) * relu(-1) = 1/6
    np.testing.assert_allclose(_core.gradcam_plus_plus_weights(acts, grads), [[1.0 / 6.0]])


def test_gradcam_plus_plus_zero_gradient_gives_zero_not_nan():
    acts = np.ones((1, 1, 2, 2))
    weights = _core.gradcam_plus_plus_weights(acts, np.zeros((1, 1, 2, 2)))
    assert np.all(np.isfinite(weights))
    assert np.all(weights == 0)


def test_cam_is_the_class_weighted_sum_without_relu():
    acts = np.array([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    np.testing.assert_array_equal(
        _core.class_activation_map(acts, np.array([[1.0, -1.0]])), [[[-2.0, 2.0]]]
    )


@pytest.mark.parametrize(
    ("heatmap", "expected"),
    [
        (np.zeros((2, 2)), np.zeros((2, 2))),
        (np.array([[0.0, 2.0], [1.0, 4.0]]), np.array([[0.0, 0.5], [0.25, 1.0]])),
        (np.array([[-1.0, 2.0]]), np.array([[0.0, 1.0]])),
        (np.array([[np.nan, 2.0]]), np.array([[0.0, 1.0]])),
    ],
)
def test_normalize(heatmap, expected):
    result = _core.normalize(heatmap)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)
