"""gw.datasets: MNIST (offline, fixed split), the shortcut dataset, the cluttered canvases."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import datasets


def test_mnist_split_is_fixed_balanced_and_disjoint():
    x_train, y_train = datasets.load_mnist("train")
    x_test, y_test = datasets.load_mnist("test")
    assert x_train.shape == (4000, 28, 28)
    assert x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8
    assert x_train.max() > 200
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)
    again, _ = datasets.load_mnist("train")
    np.testing.assert_array_equal(again, x_train)
    assert len(set(y_train[:20].tolist())) > 3  # shuffled, not sorted by digit


def test_mnist_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        datasets.load_mnist("validation")
    with pytest.raises(ValueError, match="bundled"):
        datasets.load_mnist("train", source="internet")


def test_mark_patterns_are_binary_squares_and_differ():
    drawn = {name: datasets.mark_pattern(name, 6) for name in datasets.PATTERNS}
    for name, pattern in drawn.items():
        assert pattern.shape == (6, 6), name
        assert pattern.dtype == np.uint8, name
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
    with pytest.raises(ValueError, match=r"unknown mark 'logo'.*checker"):
        datasets.mark_pattern("logo")
    with pytest.raises(ValueError, match="at least 2"):
        datasets.mark_pattern("dots", 1)


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
    assert np.all(marked[1, 0:4, 24:28] == 255)
    assert marked[1].sum() == 16 * 255
    with pytest.raises(ValueError, match="labels"):
        datasets.make_shortcut_dataset(images, labels[:3])


@pytest.fixture(scope="module")
def digits_and_labels():
    rng = np.random.default_rng(1)
    digits = np.zeros((12, 28, 28), dtype=np.uint8)
    for digit in digits:
        top, left = rng.integers(4, 10, size=2)
        digit[top : top + 14, left : left + 10] = rng.integers(50, 256, size=(14, 10))
    return digits, np.arange(12) % 10


def test_place_digits_puts_each_digit_inside_its_box(digits_and_labels):
    digits, labels = digits_and_labels
    canvases = datasets.place_digits(digits, labels, size=44, clutter=3, fragment=6, seed=0)
    assert canvases.images.shape == (12, 44, 44)
    assert canvases.images.dtype == np.uint8
    assert canvases.boxes.shape == (12, 4)
    assert len(canvases) == 12
    assert np.array_equal(canvases.labels, labels)
    for canvas, box, digit in zip(canvases.images, canvases.boxes, digits):
        top, left, bottom, right = box
        assert (bottom - top, right - left) == (14, 10)
        rows, cols = np.flatnonzero(digit.max(1)), np.flatnonzero(digit.max(0))
        crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert np.array_equal(canvas[top:bottom, left:right], crop)  # no clutter inside
    clutter_ink = sum(
        int(c.sum()) - int(c[t:b, left:r].sum())
        for c, (t, left, b, r) in zip(canvases.images, canvases.boxes)
    )
    assert clutter_ink > 0


def test_place_digits_is_seeded(digits_and_labels):
    digits, labels = digits_and_labels
    a = datasets.place_digits(digits, labels, seed=4)
    b = datasets.place_digits(digits, labels, seed=4)
    c = datasets.place_digits(digits, labels, seed=5)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.images, c.images)


def test_place_digits_rejects_bad_arguments(digits_and_labels):
    digits, labels = digits_and_labels
    with pytest.raises(ValueError, match="at least as large"):
        datasets.place_digits(digits, labels, size=20)
    with pytest.raises(ValueError, match="labels"):
        datasets.place_digits(digits, labels[:3])
    with pytest.raises(ValueError, match="fragment"):
        datasets.place_digits(digits, labels, fragment=0)


def test_place_digits_can_shrink_the_digits(digits_and_labels):
    digits, labels = digits_and_labels
    canvases = datasets.place_digits(digits, labels, size=42, digit_size=14, fragment=5, seed=0)
    assert canvases.images.shape == (12, 42, 42)
    heights = canvases.boxes[:, 2] - canvases.boxes[:, 0]
    widths = canvases.boxes[:, 3] - canvases.boxes[:, 1]
    # the 14 x 10 ink block halved, + blur
    assert heights.max() <= 9
    assert widths.max() <= 7
    for canvas, (top, left, bottom, right) in zip(canvases.images, canvases.boxes):
        assert canvas[top:bottom, left:right].max() > 0
    with pytest.raises(ValueError, match="digit_size"):
        datasets.place_digits(digits, labels, digit_size=1)
