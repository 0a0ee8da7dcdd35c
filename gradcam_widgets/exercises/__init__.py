"""Self-checks for the lesson exercises.

A learner fills a marked cell and calls a check, which says what is wrong without giving
the answer. Until the cell is filled in, the check says "not done yet" instead of raising.
Lesson-specific checks live in ``lessonNN.py`` modules beside this one and use
:func:`feedback` and :data:`TODO`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import is_tensor, to_numpy

__all__ = [
    "TODO",
    "Feedback",
    "Question",
    "Quiz",
    "as_map",
    "as_number",
    "feedback",
    "is_todo",
    "maps_close",
    "predict_then_run",
    "record_prediction",
    "watch_calls",
]


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

    def __init__(self, passed: bool | None, message: str, heading: str | None = None) -> None:
        self.passed = passed
        self.message = message
        self.heading = heading

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __repr__(self) -> str:
        if self.heading is not None:
            return f"{self.heading} {self.message}"
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


@contextmanager
def watch_calls(owner: Any, name: str) -> Iterator[list[tuple[Any, ...]]]:
    """Record the calls of ``owner.name`` while the block runs (a forbidden shortcut).

    The attribute is replaced by a wrapper that records each call's arguments and then
    calls the original, and restored afterwards, also when the block raises.
    """
    calls: list[tuple[Any, ...]] = []
    original = getattr(owner, name)
    own = vars(owner)
    had_own = name in own
    raw = own.get(name)  # restored as it was stored (a staticmethod stays one)

    def watched(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    setattr(owner, name, watched)
    try:
        yield calls
    finally:
        if had_own:
            setattr(owner, name, raw)
        else:
            delattr(owner, name)


def maps_close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values, up to float32 round-off relative to ``b``'s largest value.

    ``|a - b| <= 1e-4 |b| + 1e-4 max|b|`` everywhere, and the same shape.
    """
    if a.shape != b.shape:
        return False
    scale = float(np.abs(b).max()) if b.size else 0.0
    return bool(np.allclose(a, b, rtol=1e-4, atol=1e-4 * scale + 1e-12))


def as_map(answer: Any) -> np.ndarray | None:
    """The learner's array (numpy, torch or TensorFlow) as float64, batches of one squeezed.

    Returns None if the answer is not numeric.
    """
    if is_tensor(answer):
        answer = to_numpy(answer)
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    return array


def as_number(answer: Any) -> float | None:
    """The learner's answer as one finite float, or None if it is not one number.

    Accepts Python and numpy scalars, one-element arrays and torch tensors; a bool, a
    string or a NaN is not an answer.
    """
    if is_tensor(answer):
        answer = to_numpy(answer)
    if hasattr(answer, "item") and getattr(answer, "size", 1) == 1:
        answer = answer.item()
    if isinstance(answer, (bool, np.bool_, str, bytes)):  # "3" is text, not a number
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


@dataclass(frozen=True, repr=False)
class Question:
    """One end-of-lesson concept question, multiple choice or a number.

    Attributes:
        prompt: the question as the learner reads it.
        answer: the index of the right choice, or the right number.
        explanation: why that is the answer; shown only once the learner has answered.
        choices: the options of a multiple-choice question; empty for a number.
        tolerance: how far a numeric answer may be from ``answer``.
    """

    prompt: str
    answer: float
    explanation: str
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0

    def check(self, response: Any) -> Feedback:
        """Mark ``response``: a choice letter ("b"), a choice index (1) or a number."""
        if is_todo(response):
            return feedback(None, "put your answer in place of TODO, then run the cell.")
        if self.choices:
            index = _choice_index(response, len(self.choices))
            if index is None:
                letters = ", ".join(_LETTERS[: len(self.choices)])
                return feedback(False, f"answer with one of the letters {letters}.")
            if index == int(self.answer):
                return feedback(True, self.explanation)
            return feedback(
                False,
                f"({_LETTERS[index]}) is not it. Re-read the question and try again.",
            )
        value = as_number(response)
        if value is None:
            return feedback(False, "this question wants one number.")
        if abs(value - float(self.answer)) <= self.tolerance:
            return feedback(True, self.explanation)
        return feedback(False, "that number is not it; work it out again step by step.")

    def _repr_markdown_(self) -> str:
        lines = [self.prompt]
        lines += [f"- ({_LETTERS[i]}) {choice}" for i, choice in enumerate(self.choices)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        # The question as the learner reads it: never the answer or the explanation,
        # which a saved notebook's plain-text output would otherwise reveal.
        return self._repr_markdown_()


_LETTERS = "abcdefgh"


def _choice_index(response: Any, count: int) -> int | None:
    if isinstance(response, str):
        letter = response.strip().strip("()").lower()
        if len(letter) == 1 and letter in _LETTERS[:count]:
            return _LETTERS.index(letter)
        return None
    if isinstance(response, (bool, np.bool_)):
        return None
    if isinstance(response, (int, np.integer)) and 0 <= int(response) < count:
        return int(response)
    return None


class Quiz:
    """The numbered concept questions at the end of a lesson.

    ``quiz.check(3, "b")`` marks question 3; ``quiz.score(answers)`` marks a dict of them.
    """

    def __init__(self, questions: Sequence[Question]) -> None:
        self.questions = list(questions)

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, number: int) -> Question:
        if not 1 <= number <= len(self.questions):
            raise IndexError(f"questions are numbered 1 to {len(self.questions)}.")
        return self.questions[number - 1]

    def __repr__(self) -> str:
        # Every question as the learner reads it, never an answer or an explanation.
        return "\n\n".join(repr(question) for question in self.questions)

    def _repr_markdown_(self) -> str:
        return "\n\n".join(question._repr_markdown_() for question in self.questions)

    def check(self, number: int, response: Any) -> Feedback:
        """Mark the answer to question ``number`` (numbered from 1)."""
        return self[number].check(response)

    def score(self, answers: dict[int, Any]) -> int:
        """How many of ``{number: answer}`` are right."""
        return sum(bool(self.check(number, answer)) for number, answer in answers.items())


#: Predictions a learner wrote down before running a cell, by exercise name.
_PREDICTIONS: dict[str, Any] = {}


def record_prediction(name: str, prediction: Any) -> Feedback:
    """Write down a prediction before the cell that shows the truth is run.

    Args:
        name: the exercise's name, e.g. ``"03-deeper-layers"``.
        prediction: what the learner expects (a choice letter, a number, a layer name).
    """
    if is_todo(prediction):
        return feedback(None, "write your prediction in place of TODO before running on.")
    _PREDICTIONS[name] = prediction
    return Feedback(True, f"{prediction!r}. Now run the next cell.", heading="Prediction recorded:")


def predict_then_run(
    name: str, truth: Any, *, tolerance: float = 0.0, reveal: str | None = None
) -> Feedback:
    """Compare the recorded prediction for ``name`` with what the notebook computed.

    Args:
        name: as given to :func:`record_prediction`.
        truth: the computed answer.
        tolerance: for numbers, how close counts as right.
        reveal: the measurement behind ``truth``, shown only once a prediction is on
            record (a saved notebook then does not give the answer away).
    """
    if name not in _PREDICTIONS:
        return feedback(None, "record your prediction first (the cell above), then run this.")
    guess = _PREDICTIONS[name]
    guess_number, truth_number = as_number(guess), as_number(truth)
    if guess_number is not None and truth_number is not None:
        right = abs(guess_number - truth_number) <= tolerance
    else:
        right = str(guess).strip().lower() == str(truth).strip().lower()
    heading = "As you predicted:" if right else "A surprise:"
    message = f"you said {guess!r}, the notebook computed {truth!r}."
    if reveal:
        message += f" {reveal}"
    return Feedback(right, message, heading=heading)
