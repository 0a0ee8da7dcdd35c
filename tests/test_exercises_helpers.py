"""The exercises' shared, public helpers (gradcam_widgets.exercises)."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import exercises as ex


def test_as_map_takes_arrays_lists_and_tensors_and_squeezes_batches_of_one():
    expected = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(ex.as_map(expected.tolist()), expected)
    assert np.array_equal(ex.as_map(expected[None, None]), expected)  # (1, 1, 2, 3) -> (2, 3)
    assert ex.as_map(expected[None]).dtype == np.float64
    assert ex.as_map("a map") is None
    assert ex.as_map(object()) is None
    torch = pytest.importorskip("torch")
    assert np.array_equal(ex.as_map(torch.tensor(expected[None], requires_grad=True)), expected)


def test_maps_close_allows_float32_round_off_only():
    b = np.array([[0.0, 100.0], [50.0, 1.0]])
    assert ex.maps_close(b.astype(np.float32).astype(np.float64), b)
    assert ex.maps_close(b + 5e-3, b)  # within 1e-4 of the largest value (100)
    assert not ex.maps_close(b + 0.1, b)
    assert not ex.maps_close(b[:1], b)  # another shape
    assert ex.maps_close(np.zeros(0), np.zeros(0))


def test_as_number_accepts_one_finite_number_only():
    assert ex.as_number(3) == 3.0
    assert ex.as_number(np.float32(0.5)) == 0.5
    assert ex.as_number(np.array([2.0])) == 2.0
    for bad in (True, "3", float("nan"), [1, 2], None):
        assert ex.as_number(bad) is None


def test_watch_calls_records_and_always_restores():
    class Owner:
        @staticmethod
        def helper(x, scale=1):
            return x * scale

    original = Owner.helper
    with ex.watch_calls(Owner, "helper") as calls:
        assert Owner.helper(2, scale=3) == 6  # the original still does the work
    assert calls == [((2,), {"scale": 3})]
    assert Owner.helper is original
    with pytest.raises(RuntimeError), ex.watch_calls(Owner, "helper"):
        raise RuntimeError("the learner's code failed")
    assert Owner.helper is original  # restored after an error too
    assert Owner().helper(5) == 5  # still a staticmethod: no instance bound as x
