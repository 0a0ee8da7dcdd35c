"""Self-checks for lesson 00 (start here): reading the Explorer.

Each check takes the learner's :class:`~gradcam_widgets.explorer.Explorer` and answer,
and says what is wrong without giving the answer away.
"""

from __future__ import annotations

from typing import Any

from . import TODO, Feedback, feedback, is_todo

__all__ = ["TODO", "check_earliest_map_side", "check_runner_up"]


def check_earliest_map_side(explorer: Any, answer: Any) -> Feedback:
    """Exercise 1: how many cells along each side has the earliest layer's map?

    Args:
        explorer: the lesson's Explorer.
        answer: the learner's number (the map's height, which equals its width here).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a whole number, read from the caption.")
    if isinstance(answer, bool) or not isinstance(answer, int):
        return feedback(False, f"give a whole number such as 5, not {answer!r}.")
    maps = explorer.maps()
    first = explorer.layers[0]
    side = maps[first].shape[0]
    if answer == side:
        return feedback(
            True,
            f"layer {first!r} keeps {side}x{side} cells: fine detail, but little idea yet "
            "of what the object is.",
        )
    sizes = {name: heat.shape[0] for name, heat in maps.items()}
    later = [name for name, size in sizes.items() if size == answer]
    if later:
        return feedback(
            False,
            f"{answer}x{answer} is the map size of layer {later[0]!r}. Move the layer slider "
            "all the way to the left, to the earliest layer, and read the caption again.",
        )
    return feedback(
        False,
        "no layer on the slider has a map of that size. Move the layer slider to the far "
        "left; the caption shows the map's size as (height x width).",
    )


def check_runner_up(explorer: Any, answer: Any) -> Feedback:
    """Exercise 2: the class index the network ranks second.

    Args:
        explorer: the lesson's Explorer.
        answer: the learner's class index (an int).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a class index (a whole number).")
    if isinstance(answer, bool) or not isinstance(answer, int):
        if isinstance(answer, str):
            return feedback(
                False,
                "that is a name; the index is the number in front of the name in the "
                "caption once you choose the class.",
            )
        return feedback(False, f"give a whole number, not {answer!r}.")
    count = len(explorer.class_names)
    if not 0 <= answer < count:
        return feedback(False, f"class indices run from 0 to {count - 1}.")
    rank = int((explorer.probabilities > explorer.probabilities[answer]).sum()) + 1
    if rank == 2:
        return feedback(
            True,
            f"{explorer.class_names[answer]!r} comes second. Compare its map with the "
            "winner's: close classes often look at the same place.",
        )
    return feedback(
        False,
        f"the network ranks class {answer} number {rank}, not 2. The class list shows the "
        "top predictions in order, most probable first.",
    )
