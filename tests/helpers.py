"""Helpers the test files share: plain functions (the shared models are in tests/models.py,
the Jupyter servers in tests/servers.py, the fixtures in conftest.py).

Exercise feedback: not done yet, or wrong without giving the answer away. Two ways to
find the answer in a message: lessons 01-03 quote maps and scores, so a number with two
decimals or more gives them away; lessons 04-06 also quote counts and shares, so any
number, or a share written as a percentage, does.

Uploads: an image file's bytes, and what a FileUpload widget holds once one is chosen.
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Callable

import numpy as np
from PIL import Image

Reveals = Callable[[str, object], bool]


# ------------------------------------------------------------------ exercise feedback


def quotes_decimals(message: str, values) -> bool:
    """Whether the message quotes any of the answer's values (to 2 decimals or more)."""
    quoted = [float(n) for n in re.findall(r"-?\d+\.\d+", message)]
    return any(np.isclose(q, v, atol=5e-3) for q in quoted for v in np.ravel(values))


def quotes_number_or_percentage(message: str, values) -> bool:
    """Whether the message quotes one of the answer's values (as a number or a percentage)."""
    quoted = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", message)]
    candidates = []
    for v in np.ravel(values):
        candidates += [float(v), 100.0 * float(v)]
    return any(np.isclose(q, v, atol=5e-3) for q in quoted for v in candidates if v not in (0.0,))


def assert_not_done(result) -> None:
    """The feedback for an exercise left as TODO."""
    assert result.passed is None
    assert repr(result).startswith("Not done yet")
    assert "<div" in result._repr_html_()


def assert_wrong(result, answer_values, *phrases: str, reveals: Reveals) -> None:
    """A wrong answer's feedback: says so, names each phrase, and keeps the answer back."""
    assert result.passed is False, repr(result)
    assert repr(result).startswith("Not quite")
    assert not reveals(result.message, answer_values), result.message
    for phrase in phrases:
        assert phrase in result.message, result.message


# ------------------------------------------------------------------ uploads


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """An image file's bytes, as a learner's upload brings them."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def upload_value(content: bytes, name: str = "photo.png") -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload.value holds after one file is chosen."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2024, 1, 1).astimezone(),
        },
    )
