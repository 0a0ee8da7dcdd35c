"""gw.metrics.regions and .pointing: shares of a map in a region, the pointing game.

The all-zero rule is tested here for every measure at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import metrics


@pytest.mark.parametrize(
    ("corner", "box"),
    [
        ("top-left", (0, 0, 8, 8)),
        ("top-right", (0, 20, 8, 28)),
        ("bottom-left", (20, 0, 28, 8)),
        ("bottom-right", (20, 20, 28, 28)),
    ],
)
def test_corner_box(corner, box):
    assert metrics.corner_box(28, 8, corner) == box


def test_corner_box_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown corner"):
        metrics.corner_box(28, 8, "middle")
    with pytest.raises(ValueError, match="extent"):
        metrics.corner_box(28, 29)


def test_region_share_of_simple_maps():
    box = metrics.corner_box(28, 8)
    uniform = np.ones((2, 7, 7), dtype=np.float32)
    assert np.allclose(metrics.region_share(uniform, box, 28), 64 / 784, atol=1e-6)
    corner_only = np.zeros((28, 28), dtype=np.float32)
    corner_only[:8, :8] = 1.0
    assert metrics.region_share(corner_only, box, 28) == pytest.approx([1.0])
    assert metrics.region_share(np.zeros((1, 7, 7)), box, 28).tolist() == [0.0]


def test_region_share_per_image_boxes_and_upsampling():
    maps = np.zeros((2, 7, 7), dtype=np.float32)
    maps[0, 0, 0] = 1.0  # mass in the top-left corner cell
    maps[1, 6, 6] = 1.0  # mass in the bottom-right corner cell
    top_left, bottom_right = metrics.corner_box(28, 8), metrics.corner_box(28, 8, "bottom-right")
    shares = metrics.region_share(maps, [top_left, bottom_right], 28)
    assert np.all(shares > 0.9)
    swapped = metrics.region_share(maps, [bottom_right, top_left], 28)
    assert np.all(swapped == 0.0)
    with pytest.raises(ValueError, match="one per map"):
        metrics.region_share(maps, [top_left] * 3, 28)


def test_region_share_ignores_negative_values():
    heat = np.array([[1.0, -5.0], [-5.0, -5.0]], dtype=np.float32)
    assert metrics.region_share(heat, (0, 0, 1, 1), 2) == pytest.approx([1.0])


def test_pointing_game_hits_misses_and_tolerance():
    maps = np.zeros((3, 7, 7), dtype=np.float32)
    maps[0, 0, 0] = 1.0
    maps[1, 3, 3] = 1.0
    box = metrics.corner_box(28, 8)
    assert metrics.pointing_game(maps, box, 28).tolist() == [True, False, False]  # zero map misses
    assert metrics.pointing_game(maps[1:2], box, 28, tolerance=8).tolist() == [True]


def test_upsample_maps_shape_and_errors():
    up = metrics.upsample_maps(np.ones((2, 7, 7)), (28, 14))
    assert up.shape == (2, 28, 14)
    assert up.dtype == np.float32
    with pytest.raises(ValueError, match="heatmaps"):
        metrics.upsample_maps(np.ones((1, 1, 7, 7)), 28)


def test_pointing_game_and_random_baseline():
    maps = np.zeros((3, 11, 11), dtype=np.float32)
    maps[0, 1, 1] = 1.0
    maps[1, 9, 9] = 1.0
    boxes = np.array([[0, 0, 22, 22], [0, 0, 22, 22], [0, 0, 44, 44]])
    assert metrics.pointing_game(maps, boxes, 44).tolist() == [True, False, False]
    assert metrics.random_baseline(boxes, 44) == pytest.approx((0.25 + 0.25 + 1.0) / 3)
    assert metrics.random_baseline((0, 0, 10, 20), (20, 40)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="boxes"):
        metrics.random_baseline(np.zeros((3, 3)), 44)


def test_random_baseline_with_a_tolerance_is_what_the_game_counts():
    """Grown, clipped boxes: the same hit rate as random points in the tolerant game."""
    boxes = np.array([[0, 2, 9, 11], [30, 33, 42, 41], [5, 5, 10, 10]])
    grown = np.clip(boxes + np.array([-3, -3, 3, 3]), 0, 42)
    by_hand = np.mean((grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]) / 42**2)
    assert metrics.random_baseline(boxes, 42, tolerance=3) == pytest.approx(by_hand)
    assert metrics.random_baseline(boxes, 42, tolerance=0) == metrics.random_baseline(boxes, 42)
    # a second computation: every pixel as the map's peak, scored by the tolerant game
    peaks = np.zeros((42 * 42, 42, 42), dtype=np.float32)
    peaks[np.arange(42 * 42), np.arange(42 * 42) // 42, np.arange(42 * 42) % 42] = 1.0
    rates = [np.mean(metrics.pointing_game(peaks, box, 42, tolerance=3)) for box in boxes]
    assert np.mean(rates) == pytest.approx(by_hand)


def test_random_baseline_is_what_random_points_score():
    rng = np.random.default_rng(0)
    boxes = np.array([[5, 5, 25, 20], [10, 0, 44, 12]])
    points = rng.integers(0, 44, size=(20000, 2))
    hits = [
        np.mean(
            (points[:, 0] >= t) & (points[:, 0] < b) & (points[:, 1] >= left) & (points[:, 1] < r)
        )
        for t, left, b, r in boxes
    ]
    assert np.mean(hits) == pytest.approx(metrics.random_baseline(boxes, 44), abs=0.01)


def test_all_zero_maps_carry_no_evidence_everywhere():
    # one rule in every measure: share 0.0 (never NaN), a miss, no correlation
    zero = np.zeros((1, 7, 7), np.float32)
    negative = -np.ones((1, 7, 7), np.float32)  # clipped to zero before any share
    image = np.full((1, 28, 28), 255, np.uint8)
    for heat in (zero, negative):
        assert metrics.region_share(heat, (0, 0, 28, 28), 28).tolist() == [0.0]
        assert metrics.ink_share(heat, image).tolist() == [0.0]
        assert metrics.top_share(heat).tolist() == [0.0]
        assert metrics.pointing_game(heat, (0, 0, 28, 28), 28).tolist() == [False]
    assert metrics.rank_correlation(zero[0], np.arange(49.0).reshape(7, 7)) == 0.0


def test_ink_and_top_share_are_region_shares_with_a_mask():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 7, 7)).astype(np.float32)
    images = (rng.random((3, 28, 28)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        metrics.ink_share(maps, images), metrics.region_share(maps, images > 50, 28)
    )
    # a mask that is a box gives the box's share; a second computation by hand
    mask = np.zeros((28, 28), bool)
    mask[:10] = True
    by_hand = metrics.upsample_maps(maps, 28)
    expected = by_hand[:, :10].sum(axis=(1, 2)) / by_hand.sum(axis=(1, 2))
    np.testing.assert_allclose(metrics.top_share(maps), expected, rtol=1e-6)
    np.testing.assert_array_equal(metrics.region_share(maps, mask, 28), metrics.top_share(maps))
    with pytest.raises(ValueError, match="mask"):
        metrics.region_share(maps, np.zeros((2, 28, 28), bool), 28)
