"""Self-checks and questions of lesson 00: right answers, near misses, and no answer given."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets.exercises import TODO, Quiz, lesson00

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402


@pytest.fixture(scope="module")
def ex():
    """An Explorer on a 32-pixel input whose layers give 32, 16 and 8 cells."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 6),
    ).eval()
    generator = torch.Generator().manual_seed(0)
    return gw.Explorer(net, torch.rand(1, 3, 32, 32, generator=generator), top_k=3)


def test_score_gap(ex):
    check = lesson00.check_score_gap
    order = np.argsort(-ex.scores)
    y1, y2 = float(ex.scores[order[0]]), float(ex.scores[order[1]])
    p1, p2 = float(ex.probabilities[order[0]]), float(ex.probabilities[order[1]])
    assert check(ex, TODO).passed is None
    assert check(ex, y1 - y2)
    assert check(ex, round(y1, 2) - round(y2, 2))  # as read from two captions
    for answer, phrase in [
        (y2 - y1, "sign"),
        (p1 - p2, "probabilities"),
        (100 * (p1 - p2), "probabilities"),
        (p1 / p2, "ratio"),
        (y1 - y2 + 0.5, "equal"),
    ]:
        result = check(ex, answer)
        assert result.passed is False, (answer, result)
        assert phrase in result.message, (answer, result)
        assert f"{y1 - y2:.2f}" not in result.message
    assert check(ex, "gap").passed is False


def test_occlusion_outcome():
    assert lesson00.occlusion_outcome(0.5, 0.6) == "a"
    assert lesson00.occlusion_outcome(0.5, 0.3) == "b"
    assert lesson00.occlusion_outcome(0.5, 0.2) == "c"


def test_map_side(ex):
    check = lesson00.check_map_side
    sides = {name: m.shape[0] for name, m in ex.maps().items()}
    layer = next(name for name, side in sides.items() if side == 16)  # stride 2 on 32 pixels
    assert check(ex, TODO, layer, 48, trained_side=32).passed is None
    assert check(ex, 24, layer, 48, trained_side=32)  # 48 / 2
    assert check(ex, np.float32(24.0), layer, 48, trained_side=32)
    # the run behind the answer: a 48-pixel input really gives 24 cells at that layer
    bigger = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    assert gw.gradcam(ex.state.model, bigger, target=0, layer=layer).shape[1:] == (24, 24)
    wrong = {
        16: "32-pixel input",  # the side as it was
        2: "between two neighbouring cells",  # the stride
        576: "every cell",  # the number of cells
        12: "would be the map of layer",  # the coarser layer's grid
        30: "not quite",
    }
    for answer, phrase in wrong.items():
        result = check(ex, answer, layer, 48, trained_side=32)
        assert result.passed is False, (answer, result)
        assert phrase in result.message, (answer, result)
        assert "24" not in result.message
    assert check(ex, "many", layer, 48, trained_side=32).passed is False
    with pytest.raises(ValueError, match="slider"):
        check(ex, 2, "no such layer", 48)


def test_quiz_has_five_to_eight_questions_with_explanations():
    assert isinstance(lesson00.QUIZ, Quiz)
    assert 5 <= len(lesson00.QUIZ) <= 8
    for question in lesson00.QUIZ.questions:
        assert question.explanation
        assert question.prompt
        right = question.answer if not question.choices else "abcdefgh"[int(question.answer)]
        assert question.check(right)
        assert question.check(TODO).passed is None
    assert lesson00.QUIZ.check(2, 7.39)
    assert lesson00.QUIZ.check(2, 7.4)
    assert not lesson00.QUIZ.check(2, 2.0)  # the gap itself, not the factor
    assert not lesson00.QUIZ.check(2, 1.5)  # the ratio of the scores
    assert lesson00.QUIZ.check(4, 16)
    assert not lesson00.QUIZ.check(4, 4)  # cells per side
    assert lesson00.QUIZ.check(1, 0.5)
    assert not lesson00.QUIZ.check(1, 0.15 / 12)  # scaled by the other map's maximum


def test_a_printed_question_shows_no_answer():
    for question in lesson00.QUIZ.questions:
        shown = repr(question)
        assert question.prompt in shown
        assert question.explanation not in shown
        assert "answer" not in shown
