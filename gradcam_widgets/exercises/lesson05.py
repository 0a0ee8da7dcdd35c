"""Self-checks for lesson 05 (debugging a shortcut).

Each check computes the right value itself from what the lesson defines and compares;
a wrong answer gets a hint about the likely slip, never the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import datasets, metrics
from ..metrics.regions import region_share as _region_share
from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo, watch_calls

__all__ = [
    "QUIZ",
    "TODO",
    "check_corner_share",
    "check_fair_marks",
    "check_fooled_rate",
    "check_map_moved",
    "stroke_verdict",
]


def _predict(model: Any, images: np.ndarray) -> np.ndarray:
    from ..zoo import digits

    return digits.predict_classes(model, images)


def check_fooled_rate(
    answer: Any,
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    victim: int = 0,
    mark_class: int = 5,
    corner: str = "bottom-left",
) -> Feedback:
    """Exercise 1: how often a mark alone, in another corner, turns a digit into its class.

    The exercise stamps the mark of ``mark_class`` into ``corner`` of the clean test
    images of digit ``victim`` (the training marks were all top-left) and asks for the
    fraction the model then classifies as ``mark_class``. A guess of 0 or 1 (the
    top-left result printed in the lesson) is refused unless it is what the check measures.

    Args:
        answer: the learner's fraction, a number between 0 and 1.
        model: the network trained on the marked data.
        images: the clean test images, uint8 ``(N, 28, 28)``.
        labels: their labels.
        victim: the digit whose images get the mark.
        mark_class: the class whose mark is stamped.
        corner: where the exercise stamps it (see ``metrics.CORNERS``).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the fraction you measured, then run this cell.")
    value = as_number(answer)
    if value is None or not np.isfinite(value):
        return feedback(False, f"expected one number (a fraction), got {type(answer).__name__}.")
    labels = np.asarray(labels)
    victims = np.asarray(images)[labels == victim]
    pattern = datasets.mark_pattern(datasets.DEFAULT_MARKS[mark_class])
    stamped = datasets.add_mark(victims, pattern, corner=corner)
    predicted = _predict(model, stamped)
    expected = float(np.mean(predicted == mark_class))
    if np.isclose(value, expected, atol=0.011):
        if expected > 0.5:
            verdict = f"turns most {victim}s into {mark_class}s even in the {corner} corner."
        elif expected > 0.05:
            verdict = (
                f"still turns some {victim}s into {mark_class}s in the {corner} corner: the "
                "convolutions find the texture anywhere, but the network learned it top-left."
            )
        else:
            verdict = f"does almost nothing in the {corner} corner: the network learned a place."
        return feedback(True, f"the mark of {mark_class} {verdict}")
    top_left = datasets.add_mark(victims, pattern)
    if corner != "top-left" and np.isclose(
        value, float(np.mean(_predict(model, top_left) == mark_class)), atol=0.011
    ):
        return feedback(
            False,
            f"this is what the mark does in the top-left corner, where it was trained. The "
            f"exercise moves it: pass corner={corner!r} to datasets.add_mark.",
        )
    if value > 1.0 and np.isclose(value, expected * len(victims), atol=1.1):
        return feedback(
            False,
            "that looks like a count of images. The exercise asks for a fraction between 0 "
            "and 1: divide by the number of images.",
        )
    if not 0.0 <= value <= 1.0:
        return feedback(False, "a fraction lies between 0 and 1.")
    plain = _predict(model, victims)
    if np.isclose(value, float(np.mean(plain == mark_class)), atol=0.011):
        return feedback(
            False,
            "this is what the model says about the images *without* the mark. Stamp the mark "
            "with datasets.add_mark first, then predict.",
        )
    if np.isclose(value, float(np.mean(predicted == victim)), atol=0.011):
        return feedback(
            False,
            f"this is the fraction still classified as {victim}. The question asks how many "
            f"became {mark_class}s.",
        )
    everyone = datasets.add_mark(np.asarray(images), pattern, corner=corner)
    if np.isclose(value, float(np.mean(_predict(model, everyone) == mark_class)), atol=0.011):
        return feedback(
            False,
            f"you stamped every test image. Keep only the images of digit {victim} "
            f"(labels == {victim}).",
        )
    if value in (0.0, 1.0):
        return feedback(
            False, "that looks like a guess. Stamp, predict and measure: the check does."
        )
    return feedback(
        False,
        f"not the fraction the check measures. Did you stamp the mark of class {mark_class} "
        f"into the {corner} corner of the clean images of digit {victim}, predict with the "
        f"shortcut model, and average (predictions == {mark_class})?",
    )


def _share(heat: np.ndarray, box: tuple[int, int, int, int]) -> float:
    top, left, bottom, right = box
    total = float(heat.sum())
    return float(heat[top:bottom, left:right].sum()) / total if total > 0 else 0.0


def _share_slip(value: float, heat: np.ndarray, box: tuple[int, int, int, int]) -> str | None:
    """The hint for a value that matches a known slip on this map and box, or None."""
    top, left, bottom, right = box
    expected = _share(heat, box)

    def near(other: float) -> bool:
        return not np.isclose(other, expected, rtol=1e-3, atol=1e-4) and bool(
            np.isclose(value, other, rtol=1e-3, atol=1e-6)
        )

    if near(float(heat[top:bottom, left:right].sum())):
        return "this is the total inside the box. A share divides it by the whole map's total."
    if near((bottom - top) * (right - left) / heat.size):
        return (
            "this is the box's share of the image's area, the same for every map. Weigh the "
            "pixels by the map's values."
        )
    if near(1.0 - expected):
        return "this is the share *outside* the box."
    if heat.mean() > 0 and near(float(heat[top:bottom, left:right].mean() / heat.mean())):
        return (
            "you divided two averages. Sum the values inside the box and divide by the sum "
            "over the whole map."
        )
    if near(_share(heat.T, box)) or near(_share(heat, (left, top, right, bottom))):
        return "rows and columns are swapped: slice heat[top:bottom, left:right], rows first."
    if near(_share(heat, (top, left, bottom + 1, right + 1))):
        return "the box's bottom and right are excluded, as in a numpy slice: no + 1."
    if not 0.0 <= value <= 1.0:
        return "a share lies between 0 and 1."
    return None


def _made_up_maps() -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Maps and boxes of other sizes and places, so a printed value cannot pass."""
    rng = np.random.default_rng(5)
    tall = np.maximum(rng.normal(size=(20, 16)), 0.0)
    square = rng.random((28, 28)) ** 3
    return [(tall, (3, 5, 9, 15)), (square, (18, 20, 28, 28)), (np.zeros((6, 6)), (0, 0, 2, 2))]


def check_corner_share(function: Any, heat: np.ndarray, box: tuple[int, int, int, int]) -> Feedback:
    """Exercise 2: the share of a map's total inside a box, by hand.

    ``share = sum of heat inside the box / sum of heat over the map`` (0 for an all-zero
    map). The learner writes ``function(heat, box)``; the check calls it on the lesson's
    map and box and on made-up maps and boxes, so a printed value cannot pass, and
    ``metrics.region_share``, which would do the work, is refused.

    Args:
        function: the learner's ``my_share(heat, box) -> float``.
        heat: the lesson's (already upsampled, non-negative) map, ``(H, W)``.
        box: ``(top, left, bottom, right)``, bottom and right exclusive.
    """
    if is_todo(function):
        return feedback(None, "write my_share in place of TODO, then run this cell.")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself (my_share), not a number: the check calls it on other "
            "maps and boxes too.",
        )
    if function in (metrics.region_share, _region_share):
        return feedback(
            False,
            "metrics.region_share does the exercise for you. Slice, sum and divide with numpy.",
        )
    lesson = np.maximum(np.asarray(heat, dtype=np.float64), 0.0)
    top, left, bottom, right = (int(v) for v in box)
    cases = [(lesson, (top, left, bottom, right)), *_made_up_maps()]
    answers: list[float] = []
    for index, (case_heat, case_box) in enumerate(cases):
        try:
            with watch_calls(metrics, "region_share") as calls:
                result = function(case_heat.copy(), case_box)
        except Exception as error:
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if calls:
            return feedback(
                False,
                "metrics.region_share does the exercise for you. Slice, sum and divide with numpy.",
            )
        if is_todo(result):
            return feedback(None, "replace the TODO in the function's body, then run this cell.")
        value = as_number(result)
        if value is None and not case_heat.any():
            return feedback(
                False,
                "for a map that is zero everywhere the share is defined as 0: 0 / 0 gives NaN. "
                "Return 0.0 when the map's total is 0.",
            )
        if value is None:
            return feedback(
                False, f"the function should return one number, got {type(result).__name__}."
            )
        answers.append(value)
        if np.isclose(value, _share(case_heat, case_box), rtol=1e-3, atol=1e-6):
            continue
        if index > 0 and np.isclose(value, answers[0], rtol=1e-6):
            return feedback(
                False,
                "right for the lesson's map, but the function returns the same number for "
                "other maps. Compute from its arguments (heat, box), not from a printed value.",
            )
        if not case_heat.any():
            return feedback(
                False, "for a map that is zero everywhere the share is defined as 0 (no 0 / 0)."
            )
        where = "the lesson's map" if index == 0 else f"a made-up {case_heat.shape} map"
        hint = _share_slip(value, case_heat, case_box) or (
            "not the share the check finds. Slice the box as heat[top:bottom, left:right] "
            "(rows first, ends excluded), sum it, and divide by heat.sum()."
        )
        return feedback(False, f"for {where} and box {case_box}: {hint}")
    return feedback(True, "that is the share of the map's total inside the box.")


def stroke_verdict(stroke_share: float, texture_share: float) -> str:
    """Exercise 3's truth, as a choice letter, computed from the two mean corner shares.

    ``"a"``: about as high as the textures' (within 10 points); ``"b"``: clearly lower;
    ``"c"``: clearly higher.
    """
    if abs(stroke_share - texture_share) <= 0.10:
        return "a"
    return "b" if stroke_share < texture_share else "c"


#: Pixels a mark of :func:`datasets.add_mark` may change: the corner box with its margin.
_MARK_BOX = 8


def _mark_ids(images: np.ndarray, names: list[str]) -> np.ndarray:
    """Which of ``names`` sits in each image's top-left corner: its index, or -1."""
    corners = images[:, 1:7, 1:7]
    ids = np.full(len(images), -1, dtype=np.int64)
    for index, name in enumerate(names):
        ids[np.all(corners == datasets.mark_pattern(name), axis=(1, 2))] = index
    return ids


def check_fair_marks(
    fair_images: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    max_gap: float = 0.1,
) -> Feedback:
    """Exercise 4a: a training set whose marks say nothing about the label.

    The design keeps the three texture marks in the top-left corner but chooses the
    images that get them (and which mark) at random, whatever their class. The check
    finds each image's mark and compares, for every mark, how often it appears in each
    class.

    Args:
        fair_images: the learner's marked copy of ``images``, uint8 ``(N, 28, 28)``.
        images: the clean training images.
        labels: their labels.
        max_gap: the largest difference between two classes' rates of one mark that
            always counts as chance; with few images per class the allowance grows to six
            standard errors of a rate, so that random marking is never refused.
    """
    if is_todo(fair_images):
        return feedback(None, "build fair_train in place of TODO, then run this cell.")
    fair = np.asarray(fair_images)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if fair.shape != images.shape:
        return feedback(
            False,
            f"expected an array shaped like the training images {images.shape}, got "
            f"{fair.shape}. Stamp a copy of train_images; do not drop or add images.",
        )
    outside = np.ones(images.shape[1:], dtype=bool)
    outside[:_MARK_BOX, :_MARK_BOX] = False
    if not np.array_equal(fair[:, outside], images[:, outside]):
        return feedback(
            False,
            "pixels outside the top-left 8 x 8 corner changed. Stamp the marks with "
            "datasets.add_mark (top-left, the default) on a copy of train_images.",
        )
    names = list(datasets.DEFAULT_MARKS.values())
    ids = _mark_ids(fair, names)
    corner_changed = np.any(
        fair[:, :_MARK_BOX, :_MARK_BOX] != images[:, :_MARK_BOX, :_MARK_BOX], axis=(1, 2)
    )
    if np.any(corner_changed & (ids < 0)):
        return feedback(
            False,
            "some corners hold something other than the three lesson marks. Use "
            "datasets.mark_pattern with the names in datasets.DEFAULT_MARKS.",
        )
    marked = ids >= 0
    if not marked.any():
        return feedback(
            False,
            "no image carries a mark: that is section 5's fix (train on clean images). The "
            "design keeps the marks and makes them carry no information about the label.",
        )
    if marked.mean() < 0.1:
        return feedback(
            False,
            "fewer than one image in ten carries a mark: too few for the network to meet "
            "them in training. Mark a larger random share of the images.",
        )
    classes = np.unique(labels)
    if set(np.unique(labels[marked]).tolist()) <= set(datasets.DEFAULT_MARKS):
        return feedback(
            False,
            "only the classes of the original shortcut carry marks, so a mark still tells "
            "those classes apart. Choose the images to mark at random, from every class.",
        )
    smallest = min(int(np.sum(labels == c)) for c in classes)
    for index, name in enumerate(names):
        rates = np.array([np.mean(ids[labels == c] == index) for c in classes])
        overall = float(np.mean(ids == index))
        allowed = max(max_gap, 6.0 * np.sqrt(overall * (1.0 - overall) / smallest))
        if rates.max() - rates.min() > allowed:
            many, few = classes[rates.argmax()], classes[rates.argmin()]
            return feedback(
                False,
                f"the {name!r} mark is much more frequent on {many}s than on {few}s, so it "
                "still says something about the label. Draw which images get a mark, and "
                "which mark, with a random generator that never looks at the labels.",
            )
    return feedback(
        True,
        "every mark appears about equally often in every class: a mark no longer says "
        "anything about the label, so learning it cannot lower the training loss.",
    )


def check_map_moved(
    model: Any,
    marked_images: np.ndarray,
    marked_labels: np.ndarray,
    clean_images: np.ndarray,
    clean_labels: np.ndarray,
    *,
    layer: str = "conv2",
) -> Feedback:
    """Exercise 4b: the network trained on fair marks reads the digits, not the corner.

    The check measures, itself, the mean share of the ``layer`` map inside the corner
    for the marked test images of the shortcut classes, and the network's accuracy on the
    clean test images of those classes.

    Args:
        model: the learner's network trained on the fair marks.
        marked_images: the marked test images of the shortcut classes (2, 5 and 8).
        marked_labels: their labels.
        clean_images: the clean test images.
        clean_labels: their labels.
        layer: the layer whose map is measured.
    """
    from ..engine import gradcam
    from ..zoo import digits

    if is_todo(model):
        return feedback(None, "train fair_net in place of TODO, then run this cell.")
    if not hasattr(model, "forward") and not hasattr(model, "predict"):
        return feedback(False, f"expected a trained network, got {type(model).__name__}.")
    classes = sorted(datasets.DEFAULT_MARKS)
    clean_labels = np.asarray(clean_labels)
    chosen = np.isin(clean_labels, classes)
    predicted = _predict(model, np.asarray(clean_images)[chosen])
    recognised = float(np.mean(predicted == clean_labels[chosen]))
    maps = gradcam(
        model,
        digits.to_torch_input(np.asarray(marked_images)),
        target=[int(c) for c in marked_labels],
        layer=layer,
    )
    share = float(metrics.region_share(maps, metrics.corner_box(28, 8), 28).mean())
    even = 64 / 784
    if share > 0.5:
        return feedback(
            False,
            "most of the map still sits in the corner: this network still reads the marks. "
            "Was it trained on fair_train (section 2's marked_train keeps the shortcut)?",
        )
    if recognised < 0.8:
        return feedback(
            False,
            "this network recognises few clean 2s, 5s and 8s: it is not the fair network "
            "yet. Train a new torch_gap_net on fair_train as in section 2.",
        )
    if share > 2 * even:
        return feedback(
            False,
            "the map moved partly, but more of it stays in the corner than an even spread "
            "would put there. Check that the marks in fair_train carry no information.",
        )
    return feedback(
        True,
        "the map left the corner (less than an even spread puts there) and the clean 2s, 5s "
        "and 8s are recognised: with uninformative marks, the network learned the digits.",
    )


#: The end-of-lesson concept questions: each asks to transfer, predict or compute, not to
#: repeat a sentence of the lesson.
QUIZ = Quiz(
    [
        Question(
            "1. A pneumonia detector scores 95 % on a test set of chest X-rays from the same "
            "three hospitals as its training images. A colleague says the score shows that it "
            "reads the lungs. What do you reply?",
            choices=(
                "agreed: 95 % cannot be reached without reading the lungs",
                "the test images share whatever marks each hospital puts on its images, so a "
                "hospital shortcut would score just as well; test on another hospital's images "
                "or intervene",
                "95 % is too low to conclude anything",
                "accuracy on any test set can never reveal a shortcut",
            ),
            answer=1,
            explanation="like the marked test set here (97 %), a test set from the same sources "
            "shares their shortcut. Data without it (another hospital: our clean test set) or "
            "an intervention can expose it, as Zech et al. (2018) found for hospital tokens.",
        ),
        Question(
            "2. You suspect that a 'ship' classifier relies on water, and you have no photos of "
            "ships out of water. Which experiment tests the suspicion?",
            choices=(
                "paste water behind photos of other objects (cars, animals) and see whether "
                "they become 'ship'",
                "measure the accuracy on more ship photos",
                "train the classifier for longer",
                "play the pointing game on ship photos with boxes around the ships",
            ),
            answer=0,
            explanation="a counterfactual test needs only the suspect feature: add it where it "
            "does not belong and watch the prediction, as stamping the 5's dots on 3s did. More "
            "ship photos carry the same water.",
        ),
        Question(
            "3. A map spread evenly over a 28 x 28 image puts what percentage of its total "
            "inside a 4 x 4 box? Give a number in per cent.",
            answer=100 * 16 / 784,
            tolerance=0.05,
            explanation="16 of the 784 pixels: about 2.04 %. Any share far above the box's "
            "area share means the map concentrates there.",
        ),
        Question(
            "4. ResNet-50's last convolutional layer gives a 7 x 7 map for a 224 x 224 photo. "
            "How many pixels apart are the centres of two neighbouring cells (a number)?",
            answer=32,
            tolerance=0.5,
            explanation="224 / 7 = 32. A copyright tag 20 pixels wide is smaller than one "
            "cell, and each cell sees far more than its own 32 x 32 pixels (its receptive "
            "field), so the tag's evidence spreads onto the cells around it; look at an "
            "earlier, finer layer too, as conv2 did here.",
        ),
        Question(
            "5. Which mark would you expect to hide best in the Grad-CAM map of a digit "
            "classifier that depends on it (the smallest share of the map in the corner)?",
            choices=(
                "a checkerboard texture",
                "a short white bar, like a piece of a pen stroke",
                "a pattern of isolated dots",
                "all three equally: the network needs each of them",
            ),
            answer=1,
            explanation="Grad-CAM gives each channel one weight for the whole image. A bar "
            "excites the same stroke channels as the digit's own strokes, so its weight lights "
            "up the digit too; a texture unlike any digit can have corner-only channels.",
        ),
        Question(
            "6. Instead of exercise 4's design, you stamp the checker mark on a random half of "
            "the 2s and on no other class. Does the shortcut disappear?",
            choices=(
                "yes: half of the 2s carry no mark, so the network must learn the digit",
                "no: a checker still occurs only on 2s, so it still predicts the label wherever "
                "it appears",
                "yes: random choice removes every correlation",
                "no: the mark is in the same corner as before, which is what matters",
            ),
            answer=1,
            explanation="what matters is what a mark says about the label. Here a checker "
            "still means '2' with certainty, so relying on it still lowers the training loss "
            "on the marked half; exercise 4 puts every mark on every class equally often.",
        ),
        Question(
            "7. After the fix the corner share fell to a few per cent. What does this show?",
            choices=(
                "that the network is right for the right reasons on every image",
                "that the test images no longer carry marks",
                "that these classes' evidence no longer sits in the corner; other shortcuts could "
                "still exist",
                "nothing: maps of two networks cannot be compared",
            ),
            answer=2,
            explanation="the same measure on the same images compares the two networks: it "
            "shows that the evidence *for* these classes left the corner. It does not show "
            "that the corner no longer matters (section 5: the clean network's maps stay out "
            "of the corner, yet the dots still cost it most of the marked 5s), nor that no "
            "other shortcut exists.",
        ),
    ]
)
