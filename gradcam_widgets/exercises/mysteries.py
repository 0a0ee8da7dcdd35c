"""Diagnosis exercises: a function with one classic mistake, drawn at random.

A :class:`Mystery` behaves like a map function (``gw.cam`` or ``gw.gradcam``) with one
mistake taken from a list of candidates. Which candidate is drawn when the learner runs
the cell that makes it, so reading the package's source shows the candidates but not
which one this learner got: telling them apart takes experiments (run the function on
chosen inputs, compare with the package). The mystery keeps its answer as a salted hash,
and refuses further answers after two wrong ones, so guessing letters in turn is no
shortcut either: the learner draws a new mystery and experiments again.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from . import Feedback, feedback, is_todo

__all__ = ["Candidate", "Mystery", "check_mystery", "draw", "draw_distinct"]

#: Wrong answers a mystery accepts before it must be drawn again.
WRONG_ANSWERS_ALLOWED = 2

_LETTERS = "abcdefgh"


class Candidate:
    """One possible hidden mistake.

    Args:
        choice: how the choice list describes it ("It averages over the batch axis.").
        function: the implementation with that mistake, called with the mystery's arguments.
        hint: shown when a learner picks this choice wrongly: an experiment that tests it,
            true whatever the drawn mistake is.
        explanation: shown when a learner picks it rightly: why the experiments show it.
    """

    def __init__(
        self, choice: str, function: Callable[..., Any], hint: str, explanation: str
    ) -> None:
        self.choice = choice
        self.function = function
        self.hint = hint
        self.explanation = explanation


def _digest(salt: str, letter: str) -> str:
    return hashlib.sha256(f"{salt}:{letter}".encode()).hexdigest()


class Mystery:
    """A map function with one hidden mistake; call it like the function it imitates.

    Made by :func:`draw`; checked with :func:`check_mystery`. The drawn mistake is kept
    only inside a closure and as a salted hash of its letter.
    """

    def __init__(self, label: str, candidates: Sequence[Candidate], index: int) -> None:
        salt = secrets.token_hex(8)
        function = candidates[index].function

        def call(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        self._call = call
        self._salt = salt
        self._digest = _digest(salt, _LETTERS[index])
        self._candidates = tuple(candidates)
        self._wrong = 0
        self.label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function, mistake and all."""
        return self._call(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.label}: one hidden mistake; find it by experiment>"

    @property
    def choices(self) -> tuple[str, ...]:
        """The candidate mistakes, in letter order."""
        return tuple(candidate.choice for candidate in self._candidates)

    def _is(self, letter: str) -> bool:
        return _digest(self._salt, letter) == self._digest


def draw(
    label: str, candidates: Sequence[Candidate], rng: random.Random | None = None
) -> Mystery:
    """A :class:`Mystery` whose mistake is drawn from ``candidates``.

    Args:
        label: the mystery's name, shown by its ``repr``.
        candidates: the possible mistakes (a correct version may be one of them).
        rng: the generator that draws; by default the operating system's (unseeded), so
            every run of the lesson may hide another mistake.
    """
    chooser = rng if rng is not None else random.SystemRandom()
    return Mystery(label, candidates, chooser.randrange(len(candidates)))


def draw_distinct(
    labels: Sequence[str], candidates: Sequence[Candidate], rng: random.Random | None = None
) -> list[Mystery]:
    """One :class:`Mystery` per label, each with a different mistake drawn from ``candidates``.

    Args:
        labels: the mysteries' names; at most as many as there are candidates.
        candidates: the possible mistakes.
        rng: as for :func:`draw`.
    """
    chooser = rng if rng is not None else random.SystemRandom()
    indices = chooser.sample(range(len(candidates)), len(labels))
    return [Mystery(label, candidates, index) for label, index in zip(labels, indices)]


def check_mystery(mystery: Any, answer: Any) -> Feedback:
    """Whether ``answer`` (a letter of ``mystery.choices``) names the drawn mistake.

    A wrong answer gets the chosen candidate's hint (an experiment that would have ruled
    it out); after :data:`WRONG_ANSWERS_ALLOWED` wrong answers the mystery answers no more.
    """
    if not isinstance(mystery, Mystery):
        return feedback(
            False, "pass the mystery function itself, as the cell that drew it named it."
        )
    if is_todo(answer):
        return feedback(None, "replace TODO with a letter, after your experiments.")
    count = len(mystery.choices)
    letters = _LETTERS[:count]
    letter = str(answer).strip().strip("()").lower()
    if len(letter) != 1 or letter not in letters:
        return feedback(False, f"answer with one letter, {', '.join(letters)}.")
    if mystery._wrong >= WRONG_ANSWERS_ALLOWED:
        return feedback(
            False,
            f"{WRONG_ANSWERS_ALLOWED} wrong answers for this mystery: draw a new one (run the "
            "cell that draws it again), then experiment until only one choice fits.",
        )
    candidate = mystery._candidates[letters.index(letter)]
    if mystery._is(letter):
        return feedback(True, candidate.explanation)
    mystery._wrong += 1
    return feedback(False, f"({letter}) does not fit every experiment: {candidate.hint}")
