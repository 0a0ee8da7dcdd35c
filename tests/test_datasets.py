"""The shortcut dataset of lesson 05 and the region measures of a map."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import datasets, metrics


def test_mark_patterns_are_binary_squares_and_differ():
    drawn = {name: datasets.mark_pattern(name, 6) for name in datasets.PATTERNS}
    for name, pattern in drawn.items():
        assert pattern.shape == (6, 6) and pattern.dtype == np.uint8, name
        assert set(np.unique(pattern)) <= {0, 255}, name
        assert pattern.any(), name
    names = list(drawn)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not np.array_equal(drawn[first], drawn[second]), (first, second)
    assert datasets.mark_pattern("checker", 4).tolist() == [
        [0, 255, 0, 255],
        [255, 0, 255, 0],
        [0, 255, 0, 255],
        [255, 0, 255, 0],
    ]


def test_mark_pattern_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown mark 'logo'.*checker"):
        datasets.mark_pattern("logo")
    with pytest.raises(ValueError, match="at least 2"):
        datasets.mark_pattern("dots", 1)


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


def test_add_mark_stamps_a_copy_at_the_margin():
    images = np.full((3, 28, 28), 7, dtype=np.uint8)
    pattern = datasets.mark_pattern("dots", 6)
    marked = datasets.add_mark(images, pattern, corner="bottom-right", margin=1)
    assert np.all(images == 7)  # the input is unchanged
    assert np.array_equal(marked[:, 21:27, 21:27], np.broadcast_to(pattern, (3, 6, 6)))
    untouched = np.ones((28, 28), dtype=bool)
    untouched[21:27, 21:27] = False
    assert np.all(marked[:, untouched] == 7)
    single = datasets.add_mark(images[0], pattern)
    assert single.shape == (28, 28)
    assert np.array_equal(single[1:7, 1:7], pattern)


def test_make_shortcut_dataset_marks_only_the_chosen_classes():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 30, size=(40, 28, 28)).astype(np.uint8)
    labels = np.arange(40) % 10
    marked, is_marked = datasets.make_shortcut_dataset(images, labels)
    assert np.array_equal(is_marked, np.isin(labels, list(datasets.DEFAULT_MARKS)))
    assert np.array_equal(marked[~is_marked], images[~is_marked])
    for cls, name in datasets.DEFAULT_MARKS.items():
        members = labels == cls
        assert np.all(marked[members][:, 1:7, 1:7] == datasets.mark_pattern(name, 6))
        assert np.array_equal(marked[members][:, 8:, 8:], images[members][:, 8:, 8:])
    # every marked class has its own mark: the corner alone tells the label
    corners = {cls: marked[labels == cls][0, 1:7, 1:7] for cls in datasets.DEFAULT_MARKS}
    values = list(corners.values())
    assert not any(np.array_equal(a, b) for i, a in enumerate(values) for b in values[i + 1 :])


def test_make_shortcut_dataset_custom_marks_and_errors():
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1])
    marked, is_marked = datasets.make_shortcut_dataset(
        images, labels, {1: "square"}, size=4, corner="top-right", margin=0
    )
    assert is_marked.tolist() == [False, True, False, True]
    assert np.all(marked[1, 0:4, 24:28] == 255) and marked[1].sum() == 16 * 255
    with pytest.raises(ValueError, match="labels"):
        datasets.make_shortcut_dataset(images, labels[:3])


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


def test_peak_in_box():
    maps = np.zeros((3, 7, 7), dtype=np.float32)
    maps[0, 0, 0] = 1.0
    maps[1, 3, 3] = 1.0
    box = metrics.corner_box(28, 8)
    assert metrics.pointing_game(maps, box, 28).tolist() == [True, False, False]  # zero map misses
    assert metrics.pointing_game(maps[1:2], box, 28, tolerance=8).tolist() == [True]


def test_upsample_maps_shape_and_errors():
    up = metrics.upsample_maps(np.ones((2, 7, 7)), (28, 14))
    assert up.shape == (2, 28, 14) and up.dtype == np.float32
    with pytest.raises(ValueError, match="heatmaps"):
        metrics.upsample_maps(np.ones((1, 1, 7, 7)), 28)
