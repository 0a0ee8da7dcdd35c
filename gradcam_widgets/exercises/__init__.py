"""Self-checks for the lesson exercises.

A learner fills a marked cell and calls a check, which says what is wrong without giving
the answer. Until the cell is filled in, the check says "not done yet" instead of raising.
Lesson-specific checks live in ``lessonNN.py`` modules beside this one and use
:func:`feedback` and :data:`TODO`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TODO", "is_todo", "feedback", "Feedback", "as_number"]


class _Todo:
    """The placeholder a learner replaces; ``TODO`` in an exercise cell."""

    def __repr__(self) -> str:
        return "TODO"

    def __bool__(self) -> bool:
        return False


#: Put in exercise cells where the learner's answer goes.
TODO: Any = _Todo()


def is_todo(value: Any) -> bool:
    """True while ``value`` is (or contains, at the top level) the placeholder."""
    if value is TODO or value is None or value is Ellipsis:
        return True
    if isinstance(value, (list, tuple)):
        return any(item is TODO for item in value)
    return False


class Feedback:
    """The outcome of a check: prints one friendly line, and is truthy when passed."""

    def __init__(self, passed: bool | None, message: str) -> None:
        self.passed = passed
        self.message = message

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __repr__(self) -> str:
        if self.passed is None:
            return f"Not done yet: {self.message}"
        return ("Correct! " if self.passed else "Not quite: ") + self.message

    def _repr_html_(self) -> str:
        colour = {True: "#1b7f3b", False: "#b3261e", None: "#6b6b6b"}[self.passed]
        text = repr(self).replace("&", "&amp;").replace("<", "&lt;")
        return f'<div style="color:{colour};font-weight:600">{text}</div>'


def feedback(passed: bool | None, message: str) -> Feedback:
    """Build a :class:`Feedback`; ``passed=None`` means the exercise is not done yet."""
    return Feedback(passed, message)


def as_number(answer: Any) -> float | None:
    """The learner's answer as one finite float, or None if it is not one number.

    Accepts Python and numpy scalars, one-element arrays and torch tensors; a bool, a
    string or a NaN is not an answer.
    """
    if hasattr(answer, "detach"):  # a torch tensor
        answer = answer.detach().cpu().numpy()
    if hasattr(answer, "item") and getattr(answer, "size", 1) == 1:
        answer = answer.item()
    if isinstance(answer, (bool, np.bool_)):
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
