"""Class names, probabilities and class look-up, shared by the Explorer, figures and CLI.

No widget and no framework code: plain lists and numpy arrays.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "ClassLookupError",
    "class_names",
    "lookup_class",
    "percent",
    "softmax",
]

Names = Sequence[str] | Mapping[int, str] | None


class ClassLookupError(ValueError):
    """What was typed names no single class; the message says what to type instead."""


def class_names(names: Names, count: int) -> list[str]:
    """One display name per class: the given names, or the indices as text.

    Args:
        names: a list (index ``i`` names class ``i``), a dict (missing classes keep
            their index), or ``None``.
        count: how many classes the model scores.

    Raises:
        ValueError: a list whose length is not ``count``.
    """
    if names is None:
        return [str(i) for i in range(count)]
    if isinstance(names, Mapping):
        return [str(names.get(i, i)) for i in range(count)]
    listed = [str(name) for name in names]
    if len(listed) != count:
        raise ValueError(
            f"class_names has {len(listed)} names but the model scores {count} classes."
        )
    return listed


def softmax(logits: np.ndarray) -> np.ndarray:
    """``exp(z_c) / sum_j exp(z_j)`` along the last axis, in float64 (shifted: no overflow)."""
    array = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(array - array.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def percent(p: float) -> str:
    """A probability as a short percentage; tiny ones as ``"<0.1%"`` rather than ``0.0%``."""
    return "<0.1%" if p < 0.0005 else f"{p:.1%}"


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def lookup_class(text: str, names: Sequence[str]) -> int:
    """The class index for what a user typed: a number or (part of) a class name.

    Rules, in order: an index (``"285"``, ``"#285"``); a name matched exactly, ignoring
    case, repeated spaces and ``_`` read as a space (``"egyptian_cat"``); a part of a name
    that only one class contains (``"tabb"``).

    Args:
        text: what was typed.
        names: the class names, index ``i`` naming class ``i``.

    Returns:
        The class index.

    Raises:
        ClassLookupError: an index out of range, a name several classes share, a part
            several names contain, or nothing close; the message says what to do.
    """
    query = str(text).strip()
    if query.startswith("#"):
        query = query[1:].strip()
    count = len(names)
    if query.lstrip("-").isdigit():
        index = int(query)
        if 0 <= index < count:
            return index
        raise ClassLookupError(
            f"there is no class {index}: class index {index} is out of range 0-{count - 1}"
        )
    if not query:
        raise ClassLookupError("type a class name or a class index")
    wanted = _normalise(query)
    normalised = [_normalise(name) for name in names]
    exact = [i for i, name in enumerate(normalised) if name == wanted]
    if len(exact) == 1:
        return exact[0]
    if exact:
        listed = ", ".join(str(i) for i in exact)
        raise ClassLookupError(
            f"class name {text!r} is ambiguous (classes {listed}): give the index"
        )
    partial = [i for i, name in enumerate(normalised) if wanted in name]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(names[i] for i in partial[:6])
        more = ", …" if len(partial) > 6 else ""
        raise ClassLookupError(
            f"{len(partial)} classes match {query!r} ({shown}{more}): type more of the name"
        )
    close = difflib.get_close_matches(wanted, normalised, n=3)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    raise ClassLookupError(f"unknown class name {text!r}{hint}")
